# Power cuts: the journal loses no record whose append returned.
import json
import random
import subprocess
import sys
import time

from agent.journal import Journal
from host_tools import mpy
from host_tools.paths import ROOT

CUTS = 1000


def test_littlefs_power_cuts_under_micropython(figure, tmp_path):
    """1000 seeded cuts at random block writes of a LittleFS (os.VfsLfs2)
    flash kept in an image file, each followed by a boot from that file
    (tests/mp/powercut.py)."""
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=4m", "tests/mp/powercut.py", "0", str(CUTS),
                          str(tmp_path / "flash.img")],
                         cwd=ROOT, env=mpy.micropython_env(ROOT), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["failed"] == 0, summary["failures"]
    assert summary["trials"] == CUTS and summary["cuts"] >= CUTS * 0.95
    figure("journal on LittleFS: %d power cuts, %d appends, 0 records lost (torn tails seen: %d)"
           % (summary["cuts"], summary["appends"], summary["torn_tails"]))


WRITER = """
import sys
from agent.journal import Journal
j = Journal(sys.argv[1], max_bytes=1 << 20, segment_bytes=2048)
for k in range(100000):
    rid = j.append("event", "punch", {"k": k, "pad": "y" * (k % 50)})
    print(rid, k, flush=True)
"""


def test_killed_process_loses_nothing_on_cpython(tmp_path):
    rng = random.Random(5)
    folder = str(tmp_path / "j")
    promised = {}
    first = 1
    for trial in range(15):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, folder], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.15, 0.5))  # it starts, then appends until killed
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        for line in out.splitlines(keepends=True):
            if not line.endswith("\n"):
                continue  # the kill landed mid-print: not a promise the test saw
            rid, k = line.split()
            promised[int(rid)] = int(k)
        j = Journal(folder, max_bytes=1 << 20, segment_bytes=2048)
        got = {r[0]: r[4]["k"] for r in j.read(limit=10 ** 6)}
        for rid, k in promised.items():
            assert got.get(rid) == k, "trial %d: record %d lost" % (trial, rid)
        ids = sorted(got)
        # Ids continue across kills, without holes (a kill mid-append may
        # add at most the one record whose append had not returned).
        assert ids == list(range(first, first + len(ids))), "trial %d: a hole in the ids" % trial
        assert len(ids) - len(promised) in (0, 1)
        j.ack(j.next_id - 1)  # the next run starts from an empty journal
        first = j.next_id
        j.close()
        promised = {}
    assert first > 100


def test_full_partition_evicts_counted_instead_of_failing():
    """LittleFS smaller than the journal's cap: the disk fills first. Every
    append still succeeds, and every id is either kept or counted."""
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=2m", "tests/mp/disk_full.py"],
                         cwd=ROOT, env=mpy.micropython_env(ROOT), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])
    assert r["errors"] == []
    assert r["evicted"] > 0 and r["notices"] > 0
    assert r["kept"] + r["evicted"] == r["last_id"]
    assert r["newest_value"]["i"] == 1999  # the newest records are the ones kept
