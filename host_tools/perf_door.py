"""`doorlink perf door`: how fast a door controller acts and decides.

End to end on the virtual board (the real agent, the emulator's pins over
loopback, the bench), per runtime: cloud command -> relay, exit button ->
relay, card -> relay with USERS users in the store, and the full sync of
those users over the cloud link; then the store alone (lookup by card and
the access policy) with host_tools/mp/perf_users.py. Figures, printed; no pass/fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from host_tools import mpy
from host_tools.admin import AdminSession
from host_tools.emulator import BoardEmulator
from host_tools.paths import ROOT
from host_tools.rig import Rig

RUNTIMES = ("micropython", "cpython")
BUILD = ROOT / "build"
PAGE = 50              # users per users_sync page (docs/door-controller.md, section 5)
CARD0 = 7000000        # user i holds card CARD0 + i
READER = "front-reader"
PULSE_MS = 150         # short unlocks: each sample relocks before the next


def _user(i: int) -> dict:
    return {"id": f"u{i:05d}", "name": f"User {i}", "cards": [CARD0 + i]}


def _pick(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(q * len(s)))] * 1000


async def _relay_after(emu: BoardEmulator, pin: int, act: Callable[[], Awaitable[object]]) -> float:
    """Seconds from `act` starting to the emulator seeing the relay pin at
    its unlock level (energised here); then waits for the relock."""
    seen = len(emu.writes)
    t0 = time.monotonic()
    await act()
    await emu.wait_output(pin, 1, timeout=10)
    at = next(t for t, p, v in emu.writes[seen:] if p == pin and v == 1)
    await emu.wait_output(pin, 0, timeout=10)
    return at - t0


async def on_board(runtime: str, users: int, samples: int, workdir: Path) -> dict:
    device = f"perf-door-{runtime}"
    rig = Rig(workdir / device, board="emulated", runtime=runtime, device_id=device,
              peripherals={"door": {"unlock_ms": PULSE_MS}}, site={"heartbeat_s": 5})
    async with rig:
        await rig.start_bench()
        emu = (await rig.start_agent()).emulator
        await rig.wait_registered()
        relay = next(p["relay_pin"] for p in emu.board["peripherals"] if p["type"] == "door")
        gap_ms = next(p.get("frame_gap_ms", 100) for p in emu.board["peripherals"] if p["type"] == "wiegand")
        async with AdminSession(rig.bench.url) as admin:
            t0 = time.perf_counter()
            await admin.command(device, "users_sync", {"phase": "begin"})
            for p in range(0, users, PAGE):
                page = [_user(i) for i in range(p, min(users, p + PAGE))]
                await admin.command(device, "users_sync", {"phase": "page", "users": page}, timeout=60)
            await admin.command(device, "users_sync", {"phase": "commit"}, timeout=120)
            sync_s = time.perf_counter() - t0
            cloud, rex, card = [], [], []
            for i in range(samples):
                cloud.append(await _relay_after(emu, relay, lambda: admin.send(
                    device, "unlock", {"duration_ms": PULSE_MS})))
                rex.append(await _relay_after(emu, relay, lambda: _press(emu)))
                who = (i * 7919) % users
                card.append(await _relay_after(emu, relay, lambda who=who: emu.swipe_card(READER, CARD0 + who)))
    return {"sync_s": sync_s, "gap_ms": gap_ms,
            "cloud": (_pick(cloud, 0.5), _pick(cloud, 0.99)), "rex": (_pick(rex, 0.5), _pick(rex, 0.99)),
            "card": (_pick(card, 0.5), _pick(card, 0.99))}


async def _press(emu: BoardEmulator) -> None:
    emu.press_rex()


def user_store(runtime: str, folder: Path, users: int, samples: int) -> dict:
    """A full sync of `users` users, then card -> decision (store lookup and
    policy) for `samples` of them: host_tools/mp/perf_users.py, under
    MicroPython within the door board's heap, or under CPython."""
    script = str(ROOT / "host_tools" / "mp" / "perf_users.py")
    if runtime == "micropython":
        heap = json.loads((ROOT / "boards" / "emulated.json").read_text())["heap_kb"]
        cmd = [mpy.tool("micropython"), "-X", f"heapsize={heap}k", script]
        env = mpy.micropython_env(mpy.build_deploy())
    else:
        cmd = [sys.executable, script]
        env = None
    res = subprocess.run([*cmd, str(folder), str(users), str(samples)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stdout + res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_door(users: int = 10000, samples: int = 30) -> str:
    import asyncio
    lines = [f"doorlink perf door ({users} users in the store, {samples} samples each)", "",
             f"{'what, runtime':<58} {'p50 ms':>9} {'p99 ms':>9}"]
    BUILD.mkdir(exist_ok=True)
    syncs = []
    with tempfile.TemporaryDirectory(dir=BUILD) as d:
        for runtime in RUNTIMES:
            r = asyncio.run(on_board(runtime, users, samples, Path(d)))
            for key, what in (("cloud", "cloud unlock command -> relay"),
                              ("rex", "exit button -> relay (incl. the 50 ms debounce)"),
                              ("card", f"card -> relay (incl. the {r['gap_ms']} ms frame gap)")):
                p50, p99 = r[key]
                lines.append(f"{what + ', ' + runtime:<58} {p50:>9.1f} {p99:>9.1f}")
            syncs.append(f"full sync of {users} users over JSON WebSocket, {runtime}: {r['sync_s']:.1f} s")
        for runtime in RUNTIMES:
            r = user_store(runtime, Path(d) / runtime, users, 500)
            lines.append(f"{'card -> decision (store + policy), ' + runtime:<58} {r['p50_ms']:>9.3f} "
                         f"{r['p99_ms']:>9.3f}")
            syncs.append(f"full sync of {users} users into the store alone, {runtime}: {r['sync_s']:.1f} s")
    lines += ["", *syncs, "",
              "On the virtual board: from the admin's command sent, the emulator's button pressed or the",
              "card's last Wiegand bit sent, to the emulator seeing the relay pin energise. A card waits",
              "for the end-of-frame gap before it is a card at all. The store alone: the lookup by card",
              "among the users on flash and the policy, as the controller runs them; on this host's file",
              "system (a board's flash is slower)."]
    return "\n".join(lines)
