"""`doorlink perf boot`: power-on -> relay at its locked level -> online.

Power-on is the agent's process started (by the runner, on the door board's
emulated peripherals, the bench over loopback); the relay is at its locked
level when the board's emulator first sees the door's relay pin driven to
it; online is the agent's "registered as" line. Figures, printed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

from agent.hal.safe_boot import locked_energised, relay_level
from host_tools import mpy
from host_tools.paths import board_path
from host_tools.rig import REGISTERED, Rig

RUNTIMES = ("micropython", "cpython")


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


def measure(workdir: Path, runs: int = 3) -> dict:
    out = {}
    for runtime in RUNTIMES:
        got = [asyncio.run(boot_once(workdir, runtime)) for _ in range(runs)]
        relay = [g["relay_ms"] for g in got if g["relay_ms"] is not None]
        out[runtime] = {"runs": runs, "relay_ms": statistics.median(relay) if relay else None,
                        "online_ms": statistics.median(g["online_ms"] for g in got)}
    return out


def render(r: dict) -> str:
    lines = ["doorlink perf boot (door board, emulated peripherals, JSON uplink over loopback; medians)", "",
             f"{'runtime':<14} {'-> relay locked ms':>19} {'-> online ms':>13}"]
    for runtime, b in r.items():
        relay = "not seen" if b["relay_ms"] is None else f"{b['relay_ms']:.0f}"
        lines.append(f"{runtime:<14} {relay:>19} {b['online_ms']:>13.0f}")
    lines += ["", "From the agent's process started to the emulator seeing the relay pin at its locked level,",
              "and to the agent's 'registered as' line."]
    return "\n".join(lines)
