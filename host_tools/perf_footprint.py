"""`doorlink perf footprint`: the smallest MicroPython heap the agent needs.

The standard scenario, per board and uplink, under `micropython -X
heapsize=N`: the agent on the emulated board (its peripherals, the uplink,
the journal and the management channel to the bench's control server)
drains a backlog of EVENTS records journaled while it was offline (door
events on the door board, punches on the attendance board) and takes one
6 KB message from the cloud (a `file/put` of 4.5 KB over the management
channel: 6 KB of JSON). It completes when the bench has acknowledged every
record and answered the put. A binary search over N finds the smallest
heap (in STEP_KB steps) under which it completes.

Each is searched twice: the agent's .mpy loaded from the file system into
the heap, and the agent run in place from a ROMFS image (mpremote romfs
build), as a board with a ROMFS partition runs it. Beside it: the total
size of the agent's .mpy (what a board's flash holds) and how much of the
heap is bytecode: the agent's modules imported from .mpy files versus
from a ROMFS image (host_tools/mp/romfs_heap.py). Figures, printed; no pass/fail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

from agent import records
from agent.journal import CURSOR, Journal, cursor_value
from host_tools import mpy, perf
from host_tools.bench.app import CONTROL
from host_tools.paths import ROOT, board_path
from host_tools.rig import Rig

BOARDS = {"door": "emulated", "attendance": "emulated-attendance"}
UPLINKS = ("json_ws", "xml_ws", "http")
STEP_KB = 8                  # the search's resolution
MAX_KB = 1536                # the search's ceiling
FLOOR_KB = 64                # the smallest heap_kb a board file may declare
PUT_TRIES = 2
PUT_BYTES = 4608             # base64 of this + the envelope: a 6 KB message
STARTUP = ("agent.main", "agent.config", "agent.boot_state", "agent.device")   # the README's start-up set


def _event(board: str, i: int) -> tuple:
    if board == "attendance":
        return (records.PUNCH, records.PUNCH, {"user": str(1 + i % 500), "time": "2026-12-07T08:00:00", "gmt": 0,
                                               "attend": i % 2, "ap": 1, "action": "FP", "job": 0}, None)
    name = records.DOOR_OPENED if i % 2 else records.DOOR_CLOSED
    return (records.EVENT, name, {"door": "front"}, None)


def _acked(folder: Path) -> int:
    try:
        value = cursor_value((folder / CURSOR).read_bytes())
    except OSError:
        return 0
    return value[0] if isinstance(value, list) else (value or 0)


async def scenario(workdir: Path, board: str, uplink: str, heap_kb: int, events: int,
                   timeout: float | None = None, romfs: bool = False) -> tuple[bool, str]:
    """One run of the standard scenario under a `heap_kb` heap: (completed,
    why not). Its files (a journal of `events` records) are removed after."""
    device = f"fp-{board}-{uplink}"
    work = workdir / f"{device}-{heap_kb}"
    try:
        return await _scenario(work, device, board, uplink, heap_kb, events, timeout, romfs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _scenario(work: Path, device: str, board: str, uplink: str, heap_kb: int, events: int,
                    timeout: float | None, romfs: bool) -> tuple[bool, str]:
    bfile = perf.board_with_journal(work, BOARDS[board], events)
    spec = json.loads(bfile.read_text())
    # The board declares the heap it runs in: the agent's own checks
    # against its budget (a file request's room) see the heap it has.
    spec["heap_kb"] = heap_kb
    bfile.write_text(json.dumps(spec, indent=1))
    site = {"heartbeat_s": 0.5 if uplink == "http" else 5, "backoff_base_s": 0.2, "backoff_cap_s": 0.5}
    rig = Rig(work, board=bfile, runtime="micropython", device_id=device, uplink=uplink, site=site, romfs=romfs)
    folder = rig.journal / device
    j = Journal(str(folder), max_bytes=spec["journal"]["max_kb"] * 1024,
                segment_bytes=spec["journal"]["segment_bytes"])
    for at in range(0, events, 100):
        j.append_many([_event(board, i) for i in range(at, min(events, at + 100))])
    j.close()
    timeout = timeout or 30 + events / 250
    end = time.perf_counter() + timeout
    async with rig:
        bench = await rig.start_bench()
        control = bench.app[CONTROL]
        url = bench.url.rsplit("/", 1)[0] + "/control"
        session = await rig.start_agent(site=rig.write_site(control={"url": url, "liveness_s": 30}))
        put_done, tries = False, 0
        while time.perf_counter() < end:
            if session.ended:
                return False, "exited: " + _why(rig)
            if not put_done and device in control.online():
                # A refused message (close 1009: no free block for it) is
                # sent again once, as a cloud would, on the reconnected link.
                tries += 1
                data = base64.b64encode(bytes(i % 251 for i in range(PUT_BYTES))).decode()
                try:
                    reply = await control.request(device, "file/put", {"path": "/perf.bin", "data": data},
                                                  timeout=10)
                except Exception as e:  # noqa: BLE001 - any failure of the put is the run's failure
                    if tries < PUT_TRIES:
                        continue
                    await asyncio.sleep(1)   # the agent's word on it
                    return False, f"the 6 KB put failed {tries} times: {e}; agent: " + _why(rig)
                if reply.get("error"):
                    return False, f"the 6 KB put was refused: {reply['error']}"
                put_done = True
            if put_done and _acked(folder) >= events:
                return True, ""
            await asyncio.sleep(0.05)
        return False, f"timed out after {timeout:.0f} s ({_acked(folder)} of {events} acknowledged, " \
                      f"put {'done' if put_done else 'not done'}): " + _why(rig)


def _why(rig: Rig) -> str:
    """The agent's line that says why a run failed, or its last one."""
    lines = [ln for ln in rig.lines if "MemoryError" in ln or "memory" in ln.lower() or "Error" in ln]
    return (lines[-1] if lines else (rig.lines[-1] if rig.lines else "no output"))[:200]


async def smallest_heap(workdir: Path, board: str, uplink: str, events: int, hi_kb: int,
                        romfs: bool = False) -> dict:
    """Binary search, in STEP_KB steps, for the smallest heap under which
    the scenario completes, from `hi_kb` (the board's budget) down; with
    `romfs` the agent runs from a ROMFS image, as a board with that
    partition runs it."""
    runs, lo, last_fail = 0, FLOOR_KB // STEP_KB, ""   # lo: fails (assumed at the floor)
    while True:   # the board's budget first; above it, doubled up to MAX_KB
        ok, why = await scenario(workdir, board, uplink, hi_kb, events, romfs=romfs)
        runs += 1
        if ok:
            break
        if hi_kb >= MAX_KB:
            return {"heap_kb": None, "runs": runs, "why": f"fails even at {hi_kb} KB: {why}"}
        lo, last_fail = hi_kb // STEP_KB, why
        hi_kb = min(MAX_KB, hi_kb * 2)
    hi = hi_kb // STEP_KB   # passes
    while hi - lo > 1:
        mid = (lo + hi) // 2
        ok, why = await scenario(workdir, board, uplink, mid * STEP_KB, events, romfs=romfs)
        runs += 1
        if ok:
            hi = mid
        else:
            lo, last_fail = mid, why
    return {"heap_kb": hi * STEP_KB, "fails_at_kb": lo * STEP_KB, "runs": runs, "why_below": last_fail}


def mpy_bytes() -> dict:
    """The agent's .mpy, as build_deploy() makes it for a board's flash."""
    folder = mpy.build_deploy()
    files = list(folder.rglob("*.mpy"))
    return {"files": len(files), "bytes": sum(f.stat().st_size for f in files)}


def _romfs_heap(mode: str, where: Path, modules: list[str]) -> dict:
    res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=4m",
                          str(ROOT / "host_tools" / "mp" / "romfs_heap.py"), mode, str(where), *modules],
                         cwd=ROOT, env=mpy.micropython_env(), capture_output=True, text=True, timeout=120,
                         check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def bytecode_heap(workdir: Path) -> dict:
    """Heap taken by the start-up modules and by the whole agent, from .mpy
    files and from a ROMFS image (mpremote romfs build): the difference is
    what frozen modules or a ROMFS partition take out of the heap."""
    folder = mpy.build_deploy()
    image = mpy.build_romfs()
    out = {}
    for label, modules in (("startup", list(STARTUP)), ("all", ["all"])):
        fs = _romfs_heap("fs", folder, modules)
        rom = _romfs_heap("rom", image, modules)
        out[label] = {"modules": fs["modules"], "mpy_heap_kb": fs["heap_bytes"] / 1024,
                      "romfs_heap_kb": rom["heap_bytes"] / 1024,
                      "bytecode_kb": (fs["heap_bytes"] - rom["heap_bytes"]) / 1024}
    return out


def measure(workdir: Path, events: int, boards: tuple[str, ...] = tuple(BOARDS),
            uplinks: tuple[str, ...] = UPLINKS) -> dict:
    heaps: dict[str, dict] = {}
    romfs: dict[str, dict] = {}   # the same, the agent run in place from a ROMFS image
    for board in boards:
        budget = json.loads(board_path(BOARDS[board]).read_text())["heap_kb"]
        for uplink in uplinks:
            heaps[f"{board}/{uplink}"] = asyncio.run(smallest_heap(workdir, board, uplink, events, budget))
            romfs[f"{board}/{uplink}"] = asyncio.run(smallest_heap(workdir, board, uplink, events, budget,
                                                                   romfs=True))
    return {"events": events, "put_bytes": PUT_BYTES, "step_kb": STEP_KB, "heaps": heaps, "romfs": romfs,
            "mpy": mpy_bytes(), "bytecode": bytecode_heap(workdir)}


def render(r: dict) -> str:
    lines = [f"doorlink perf footprint ({r['events']} backlog events + a 6 KB management message, "
             f"MicroPython unix port, 64-bit; {r['step_kb']} KB steps)", "",
             f"{'board/uplink, code from':<30} {'smallest heap KB':>17} {'fails at KB':>12} {'runs':>5}"]
    for code, found in (("mpy", r["heaps"]), ("romfs", r.get("romfs", {}))):
        for key, h in found.items():
            shown = h["heap_kb"] if h["heap_kb"] is not None else "-"
            lines.append(f"{key + ', ' + code:<30} {shown!s:>17} {h.get('fails_at_kb', '-')!s:>12} {h['runs']:>5}")
            if h["heap_kb"] is None:
                lines.append(f"  {h['why']}")
    m = r["mpy"]
    lines += ["", f"agent .mpy: {m['files']} files, {m['bytes'] / 1024:.1f} KB", "",
              f"{'modules imported':<24} {'from .mpy KB':>13} {'from ROMFS KB':>14} {'bytecode KB':>12}"]
    for label, b in r["bytecode"].items():
        lines.append(f"{label + ' (' + str(b['modules']) + ' modules)':<24} {b['mpy_heap_kb']:>13.1f} "
                     f"{b['romfs_heap_kb']:>14.1f} {b['bytecode_kb']:>12.1f}")
    lines += ["", "mpy: the agent's .mpy files loaded into the heap; romfs: run in place from a ROMFS image",
              "(host_tools/mp/romboot.py), as on a board with a ROMFS partition.",
              "Bytecode: heap the modules take when imported from .mpy files minus from a ROMFS image",
              "(what frozen modules or a ROMFS partition on a board take out of the heap)."]
    return "\n".join(lines)
