"""`doorlink perf boot`: power-on -> relay at its locked level -> online.

Power-on is the agent's process started (by the runner, on the door board's
emulated peripherals, the bench over loopback); the relay is at its locked
level when the board's emulator first sees the door's relay pin driven to
it; online is the agent's "registered as" line. Figures, printed.

The emulated board's relay waits for the emulator's socket, so its figure
is an upper bound. The ESP32 door board's agent, on the stand-in `machine`
and `network` of tests/mp/stubs (no host has an ESP32's pins), drives the
pin itself at its first statements: its figure is timed to the stand-in's
pin log. On this wheel MicroPython runs inside a CPython process, whose
start no board has: the time to MicroPython's first statement is measured
on its own and shown beside it.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

from agent.hal.safe_boot import locked_energised, relay_level
from host_tools import mpy
from host_tools.paths import ROOT, board_path
from host_tools.rig import REGISTERED, Rig

RUNTIMES = ("micropython", "cpython")
ESP32_BOARD = "esp32-devkitc-door"
STUBS = ROOT / "tests" / "mp" / "stubs"     # the ESP32 stand-ins: machine, network
STUBS_KB = 16                               # their share of the heap (firmware on a chip)
WIFI = {"ssid": "site-ap", "password": "correct-horse"}   # the stand-in access point's
POLL_S = 0.001


async def boot_once(workdir: Path, runtime: str, uplink: str = "json_ws") -> dict:
    rig = Rig(workdir / f"boot-{runtime}", runtime=runtime, device_id=f"boot-{runtime}", uplink=uplink,
              site={"heartbeat_s": 5})
    door = next(p for p in json.loads(board_path("emulated").read_text())["peripherals"] if p["type"] == "door")
    pin, locked = door["relay_pin"], relay_level(door, locked_energised(door))
    async with rig:
        await rig.start_bench()
        if runtime == "micropython":
            mpy.build_deploy()   # up to date before the clock starts: a board's flash holds it already
        t0_mono, t0 = time.monotonic(), time.perf_counter()
        emu = (await rig.start_agent()).emulator
        online = rig.stamps[await rig.wait_for(REGISTERED, timeout=30)] - t0
        at = next((t for t, p, v in emu.writes if p == pin and v == locked), None)
    return {"relay_ms": None if at is None else (at - t0_mono) * 1000, "online_ms": online * 1000}


async def micropython_start() -> float:
    """ms from spawning `micropython` to its first statement's output."""
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(mpy.tool("micropython"), "-c", "print('up')",
                                                stdout=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    took = (time.perf_counter() - t0) * 1000
    await proc.wait()
    if line.strip() != b"up":
        raise RuntimeError(f"micropython -c printed {line!r}")
    return took


async def boot_esp32_once(workdir: Path) -> dict:
    """The ESP32 door board's agent on the stand-ins: spawn -> its relay pin
    at the locked level (the stand-in's pin log) -> online."""
    spec = json.loads(board_path(ESP32_BOARD).read_text())
    rig = Rig(workdir / "boot-esp32", runtime="micropython", device_id="boot-esp32", site={"heartbeat_s": 5})
    spec["journal"]["path"] = str(rig.workdir / "journal")
    board = rig.workdir / "board.json"
    board.write_text(json.dumps(spec))
    door = next(p for p in spec["peripherals"] if p["type"] == "door")
    want = f" {door['relay_pin']} {relay_level(door, locked_energised(door))}"
    pins = rig.workdir / "pins.log"
    pins.unlink(missing_ok=True)
    async with rig:
        await rig.start_bench()
        site = rig.write_site(wifi=WIFI)
        env = dict(mpy.micropython_env(STUBS, mpy.build_deploy()), MACHINE_PIN_LOG=str(pins))
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            mpy.tool("micropython"), "-X", f"heapsize={spec['heap_kb'] + STUBS_KB}k", "-m", "agent.main",
            "--board", str(board), "--site", str(site), env=env, cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            relay = await asyncio.wait_for(_first_line(pins, want, t0), 30)
            online = await asyncio.wait_for(_stdout_line(proc, REGISTERED, t0), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    return {"relay_ms": relay, "online_ms": online}


async def _first_line(path: Path, ending: str, t0: float) -> float:
    # Polled: the pin log is written by another process, nothing signals it.
    while True:
        if _pin_seen(path, ending):
            return (time.perf_counter() - t0) * 1000
        await asyncio.sleep(POLL_S)


def _pin_seen(path: Path, ending: str) -> bool:
    # The pin log is a few lines on a local disk: read whole, each poll.
    # The first write of the pin must be that level (a glimpse of the
    # other one first is a failure of safe boot, not a slow boot).
    pin = ending.split()[0]
    for line in (path.read_text().splitlines() if path.exists() else ()):
        parts = line.split()
        if len(parts) == 3 and parts[1] == pin:
            if not line.endswith(ending):
                raise RuntimeError(f"the relay pin's first level was not its locked level: {line!r}")
            return True
    return False


async def _stdout_line(proc: asyncio.subprocess.Process, text: str, t0: float) -> float:
    seen = []
    while True:
        line = await proc.stdout.readline()
        if not line:
            tail = "".join(seen[-20:])
            raise RuntimeError(f"the agent ended before {text!r}:\n{tail}")
        decoded = line.decode(errors="replace")
        if text in decoded:
            return (time.perf_counter() - t0) * 1000
        seen.append(decoded)


def measure(workdir: Path, runs: int = 3) -> dict:
    out = {}
    for runtime in RUNTIMES:
        got = [asyncio.run(boot_once(workdir, runtime)) for _ in range(runs)]
        relay = [g["relay_ms"] for g in got if g["relay_ms"] is not None]
        out[runtime] = {"runs": runs, "relay_ms": statistics.median(relay) if relay else None,
                        "online_ms": statistics.median(g["online_ms"] for g in got)}
    if not STUBS.is_dir():
        return out       # a checkout without the tests: no stand-ins to run the ESP32 board on
    mpy.build_deploy()   # up to date before any clock starts
    got = [asyncio.run(boot_esp32_once(workdir)) for _ in range(runs)]
    out["esp32"] = {"runs": runs, "relay_ms": statistics.median(g["relay_ms"] for g in got),
                    "online_ms": statistics.median(g["online_ms"] for g in got),
                    "start_ms": statistics.median(asyncio.run(micropython_start()) for _ in range(max(3, runs)))}
    return out


def render(r: dict) -> str:
    lines = ["doorlink perf boot (door board, emulated peripherals, JSON uplink over loopback; medians)", "",
             f"{'runtime':<14} {'-> relay locked ms':>19} {'-> online ms':>13}"]
    for runtime, b in r.items():
        if runtime == "esp32":
            continue
        relay = "not seen" if b["relay_ms"] is None else f"{b['relay_ms']:.0f}"
        lines.append(f"{runtime:<14} {relay:>19} {b['online_ms']:>13.0f}")
    e = r.get("esp32")
    if e:
        lines.append(f"{'esp32 hal':<14} {e['relay_ms']:>19.0f} {e['online_ms']:>13.0f}")
    lines += ["", "From the agent's process started to the emulator seeing the relay pin at its locked level,",
              "and to the agent's 'registered as' line."]
    if e:
        lines += ["esp32 hal: the ESP32 door board on the stand-in machine/network (Wi-Fi joined first).",
                  f"Of its {e['relay_ms']:.0f} ms to the relay, {e['start_ms']:.0f} ms is this wheel's CPython host "
                  f"starting MicroPython,", f"which a board does not have: the agent drives the relay "
                  f"{max(0.0, e['relay_ms'] - e['start_ms']):.0f} ms after MicroPython's first statement."]
    return "\n".join(lines)
