# `doorlink perf` (all, footprint, boot) at a tiny scale: the command takes
# what it should, each new piece runs for real and gives a well-formed
# table and JSON. No timed assertions: the figures are printed, not judged.
import json
import subprocess
import sys

import pytest

from host_tools import perf_all, perf_boot, perf_footprint
from host_tools.paths import ROOT

DOORLINK = [sys.executable, "-m", "host_tools.cli"]


def _doorlink(*args, timeout=60):
    return subprocess.run(DOORLINK + ["perf", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_help_names_every_benchmark_and_the_json_options():
    res = _doorlink("--help")
    assert res.returncode == 0, res.stderr
    for word in ("all", "journal", "attendance", "door", "footprint", "boot", "--json", "--compare", "--events"):
        assert word in res.stdout, res.stdout


@pytest.mark.parametrize("args, problem", [
    (["journal", "--json", "x.json"], "--json and --compare go with `doorlink perf all`"),
    (["--events", "5"], "--events must be from 100"),
    (["--compare", "/nonexistent/old.json"], "cannot read /nonexistent/old.json"),
])
def test_mistakes_get_one_line_and_no_run(args, problem):
    res = _doorlink(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert problem in res.stderr and "Traceback" not in res.stderr
    assert "perf: journal" not in res.stderr   # refused before any benchmark started


def test_compare_refuses_a_file_that_is_not_a_perf_result(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"figures": {}}))
    res = _doorlink("--compare", str(other))
    assert res.returncode == 2 and "is not a doorlink perf result" in res.stderr, res.stderr


def test_footprint_finds_a_heap_that_passes_above_one_that_fails(tmp_path):
    r = perf_footprint.measure(tmp_path, 100, boards=("door",), uplinks=("json_ws",))
    h = r["heaps"]["door/json_ws"]
    assert h["heap_kb"] is not None, h
    assert perf_footprint.FLOOR_KB <= h["fails_at_kb"] < h["heap_kb"] <= perf_footprint.MAX_KB
    assert h["heap_kb"] - h["fails_at_kb"] == perf_footprint.STEP_KB   # the search went down to one step
    rom = r["romfs"]["door/json_ws"]   # run in place from a ROMFS image: the bytecode is not in the heap
    assert rom["heap_kb"] is not None and rom["heap_kb"] + 64 <= h["heap_kb"], (rom, h)
    assert r["mpy"]["files"] > 50 and r["mpy"]["bytes"] > 0
    assert 0 < r["bytecode"]["startup"]["bytecode_kb"] < r["bytecode"]["all"]["bytecode_kb"]
    table = perf_footprint.render(r)
    assert "door/json_ws, mpy" in table and "door/json_ws, romfs" in table and f"{h['heap_kb']}" in table, table


async def test_below_its_floor_the_scenario_fails_and_says_why(tmp_path):
    ok, why = await perf_footprint.scenario(tmp_path, "attendance", "http", 64, 100)
    assert not ok and ("MemoryError" in why or "memory" in why), why


def test_boot_sees_the_relay_locked_before_the_agent_is_online(tmp_path):
    r = perf_boot.measure(tmp_path, runs=1)
    for runtime in perf_boot.RUNTIMES + ("esp32",):
        assert r[runtime]["relay_ms"] is not None, r
        assert r[runtime]["relay_ms"] < r[runtime]["online_ms"], r
    # MicroPython's own start is timed in processes of its own: on a loaded
    # machine a median of those can exceed one boot's relay time.
    assert r["esp32"]["start_ms"] > 0, r
    table = perf_boot.render(r)
    assert "micropython" in table and "esp32 hal" in table and "after MicroPython's first statement" in table, table


def test_all_prints_one_table_writes_json_and_compares(tmp_path, monkeypatch):
    # Three of the real steps (the others have tests of their own above or in test_cli.py).
    monkeypatch.setattr(perf_all, "STEPS", tuple(s for s in perf_all.STEPS if s[0] in ("journal", "drain", "boot")))
    result = perf_all.run_all(perf_all.TINY, progress=lambda s: None)
    assert result["errors"] == {}, result["errors"]
    table = perf_all.render(result)
    body = [ln for ln in table.splitlines() if ln.startswith("| ")]
    assert body[0] == "| figure | now | physical limit / best known | goal |"
    assert len(body) == 8 and all(ln.count(" | ") == 3 for ln in body), table
    assert "on LittleFS" in table and "records in" in table and "MicroPython" in table
    raw_built = (ROOT / "agent" / "journal_raw.py").exists()
    assert ("raw flash: not built" not in table) == raw_built, table
    assert result["machine"]["cpus"] and result["date"][:2] == "20"

    path = tmp_path / "run.json"
    path.write_text(json.dumps(result))
    old = perf_all.load(str(path))
    old["figures"]["drain.micropython.records_per_s"] /= 2
    change = perf_all.compare(old, result)
    assert "drain.micropython.records_per_s" in change and "+100 %" in change, change
