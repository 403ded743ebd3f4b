# Power cuts: the journal loses no record whose append returned. Here a
# CPython writer killed with SIGKILL: the process dies, the page cache
# survives, so this cannot tell a missing fsync (the crash model of
# tests/host/test_journal_crash.py can). LittleFS power cuts, on a plain
# and on a NOR flash (and a partition that fills), inside MicroPython are
# tests/mp/test_journal_powercut.py.
import random
import subprocess
import sys
import time

from agent.journal import Journal
from host_tools.paths import ROOT

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
