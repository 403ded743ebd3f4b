# `doorlink journal PATH` decodes what the agent wrote, with cbor2.
import asyncio
import json
import subprocess
import sys

from agent.journal import SEG_SUFFIX, Journal


def journal(*args):
    """`doorlink journal ARGS`, run to its end."""
    return subprocess.run([sys.executable, "-m", "host_tools.cli", "journal", *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def test_dump_shows_ids_times_ack_state_and_torn_bytes(tmp_path):
    folder = tmp_path / "j"
    j = Journal(str(folder), clock=lambda: 1700000000)
    for i in range(3):
        j.append("event", "door_opened", {"n": i})
    j.append("telemetry", None, {"temperature": 21.5})
    j.ack(2)
    j.close()
    seg = sorted(folder.glob("*" + SEG_SUFFIX))[-1]
    with open(seg, "ab") as f:
        f.write(b"\xd1\x00\x40half a record")  # torn by a power cut
    out = journal(folder)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0] == {"cursor": 2}
    recs = [e for e in lines[1:] if e.get("crc") == "ok"]
    assert [(e["id"], e["acked"]) for e in recs] == [(1, True), (2, True), (3, False), (4, False)]
    assert recs[0]["time"] == 1700000000 and recs[3]["value"] == {"temperature": 21.5}
    torn = [e for e in lines[1:] if e.get("crc") == "torn"]
    assert torn and torn[0]["bytes"] == 16

    pending = journal("--pending", folder)
    assert [json.loads(x).get("id") for x in pending.stdout.splitlines()[1:]] == [3, 4]


async def test_dump_reads_a_littlefs_image_written_by_micropython(tmp_path, micropython):
    img = tmp_path / "flash.img"
    ran = await micropython.run("tests/mp/make_image.py", img, timeout=60)
    assert ran.code == 0, ran.out
    out = await asyncio.to_thread(journal, img)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert lines[0] == {"image": str(img), "folder": "/journal/dev-9"}
    assert lines[1] == {"cursor": 2}
    assert [(e["id"], e["acked"], e["value"]["user"]) for e in lines[2:]] == [
        (1, True, 0), (2, True, 1), (3, False, 2), (4, False, 3), (5, False, 4)]
    bad = await asyncio.to_thread(journal, img, "--block-size", "512")
    assert bad.returncode == 2 and "no LittleFS file system" in bad.stderr


def _lines(out):
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_every_kind_of_corruption_is_reported_not_a_crash(tmp_path):
    from agent.codecs import cbor
    from agent.journal import frame
    folder = tmp_path / "j"
    j = Journal(str(folder), clock=lambda: 1700000000)
    j.append("event", "door_opened", {})
    j.close()
    seg = sorted(folder.glob("*" + SEG_SUFFIX))[0]
    with open(seg, "ab") as f:
        f.write(frame(b"\xff\xff\xff"))                    # CRC holds, not CBOR
        f.write(frame(cbor.encode({"not": "a record"})))  # CRC holds, CBOR, not a record
    (folder / ("0000000099" + SEG_SUFFIX)).mkdir()         # a folder where a segment should be
    (folder / "cursor").write_bytes(frame(cbor.encode("seven")))
    lines = _lines(journal(folder))
    assert lines[0]["cursor"] is None and "not an id" in lines[0]["error"]
    bad = [e for e in lines[1:] if "error" in e]
    assert [e["error"].split(" (")[0] for e in bad] == ["not CBOR", "not a record", "cannot read: Is a directory"]
    assert [e["id"] for e in lines[1:] if "id" in e] == [1]


def test_a_pending_eviction_notice_in_the_cursor_is_shown(tmp_path):
    from agent.codecs import cbor
    from agent.journal import frame
    folder = tmp_path / "j"
    Journal(str(folder)).append("event", "x", {})
    (folder / "cursor").write_bytes(frame(cbor.encode([40, 7, 34, 40])))
    assert _lines(journal(folder))[0] == {"cursor": 40, "pending_notice": [7, 34, 40]}
    j = Journal(str(folder))               # the agent re-arms the notice...
    j.append("event", "y", {})
    notices = [r for r in j.read(0) if r[3] == "journal_evicted"]
    assert [r[4] for r in notices] == [{"count": 7, "first_id": 34, "last_id": 40}]
    # ...and, once journaled, the notice is no longer pending but not yet acknowledged either
    nid = notices[0][0]
    assert _lines(journal(folder))[0] == {"cursor": 40, "unacknowledged_notices": {
        "count": 7, "first_id": 34, "last_id": 40, "notice_ids": [nid, nid]}}
    j.ack(nid)
    j.close()
    assert _lines(journal(folder))[0] == {"cursor": nid}


def test_the_journal_root_is_not_taken_for_an_empty_journal(tmp_path):
    for device in ("door-1", "door-2"):
        Journal(str(tmp_path / device)).append("event", "x", {})
    out = journal(tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "journal root" in out.stderr and "door-1, door-2" in out.stderr
    (tmp_path / "other").mkdir()
    stray = tmp_path / "other"
    (stray / "notes.txt").write_text("x")
    out = journal(stray)
    assert out.returncode == 2 and "holds no journal" in out.stderr
