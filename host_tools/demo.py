"""`doorlink demo`: the bench cloud, an emulated board and the agent, all on
127.0.0.1 (one rig, host_tools/rig.py), with a live log of what the cloud
sees. What `make run` runs.

    doorlink demo [--attendance] [--uplink json_ws|xml_ws|http] [--port P] [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.config import load_board
from host_tools import live
from host_tools.admin import AdminSession
from host_tools.cli_common import CliError, Parents, port_number, positive
from host_tools.emulator import BoardEmulator
from host_tools.paths import board_path
from host_tools.rig import Rig
from host_tools.signals import stop_event
from host_tools.zfm_emulator import ReaderEmulator

DEVICE_ID = "demo-door-1"
TERMINAL_ID = "demo-terminal-1"
TOKEN = "tok_demo_only"
PRESS_EVERY_S = 5
ONLINE_WITHIN_S = 30


def _say(line: str) -> None:
    print(line, flush=True)


async def _employees(reader: ReaderEmulator, stop: asyncio.Event) -> None:
    """An emulated queue of employees: fingers 1-3 enrolled, one pressed
    every few seconds (on, read by the agent, off)."""
    for finger in (1, 2, 3):
        reader.enroll(finger)
    rng = random.Random(7)
    while not stop.is_set():
        await asyncio.sleep(PRESS_EVERY_S)
        reader.place(rng.choice((1, 2, 3)))
        await asyncio.sleep(1.0)
        reader.lift()


# The door board's people (docs/door-controller.md, section 5): who the
# demo's visitors are, and what the controller should decide for each.
DEMO_USERS = [
    {"id": "1001", "name": "Ann", "cards": [10012345], "pin": "2468"},
    {"id": "1002", "name": "Bo", "cards": [10054321]},
    {"id": "1003", "name": "Cy", "cards": [10077777], "enabled": False},
    {"id": "1004", "name": "Dee", "cards": [10099999], "until": 1577836800},   # expired in 2020
]
UNKNOWN_CARD = 12345
VISIT_EVERY_S = 6
FIRST_VISIT_S = 2
READER = "front-reader"


async def _provision(server: str, device: str, uplink: str) -> None:
    """The users, given the way each protocol's cloud does it: one atomic
    users_sync over JSON; cleared, then one user at a time, over XML
    (SetUserData) and CloudSolution (setuserinfo), which have no full sync."""
    if uplink == "json_ws":
        steps = [("users_sync", {"phase": "begin"}), ("users_sync", {"phase": "page", "users": DEMO_USERS}),
                 ("users_sync", {"phase": "commit"})]
    else:
        steps = [("users_clear", {})] + [("user_set", {"user": u}) for u in DEMO_USERS]
    async with AdminSession(server) as admin:
        for command, payload in steps:
            res = await admin.command(device, command, payload, timeout=30)
            if not res.get("ok"):
                raise CliError(f"the device refused its users ({res.get('error')})", "see the agent's log above",
                               code=1)


async def _visitors(emu: BoardEmulator, server: str, device: str) -> None:
    """People at the door, one every few seconds: a card that opens it
    (the emulated visitor walks through), one that does not, a PIN, the
    exit button, and now and then a door pushed open with no grant."""
    visits = [
        lambda: emu.swipe_card(READER, DEMO_USERS[0]["cards"][0]),
        lambda: emu.swipe_card(READER, UNKNOWN_CARD),
        lambda: emu.press_keys(READER, "2468#"),
        lambda: emu.swipe_card(READER, DEMO_USERS[2]["cards"][0]),
        _async(emu.press_rex),
        lambda: emu.swipe_card(READER, DEMO_USERS[3]["cards"][0]),
        lambda: emu.swipe_card(READER, DEMO_USERS[1]["cards"][0]),
        lambda: _forced(emu, server, device),
    ]
    await asyncio.sleep(FIRST_VISIT_S)
    for i in itertools.count():
        await visits[i % len(visits)]()
        await asyncio.sleep(VISIT_EVERY_S)


def _async(fn: Callable[[], object]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        fn()
    return run


async def _forced(emu: BoardEmulator, server: str, device: str) -> None:
    """Someone pushes the door open with no grant; the guard at the cloud
    looks, and clears the alarm."""
    emu.set_door_open(True)
    await asyncio.sleep(1.5)
    emu.set_door_open(False)
    await asyncio.sleep(2)
    async with AdminSession(server) as admin:
        await admin.command(device, "clear_alarm", {"door": "front"})


async def demo(port: int = 8780, db: str | None = None, duration: float | None = None,
               runtime: str | None = None, attendance: bool = False, uplink: str = "json_ws",
               quiet_agent: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="doorlink-demo-"))
    online = asyncio.Event()

    def observer(kind: str, data: dict) -> None:
        if kind == "device_online":
            online.set()
        line = live.render(kind, data)
        if line:
            _say(line)

    def agent_line(line: str) -> None:
        if not quiet_agent:
            _say("    agent | " + line)

    device = TERMINAL_ID if attendance else DEVICE_ID
    board = board_path("emulated-attendance" if attendance else "emulated")
    runtime = runtime or load_board(str(board))["runtimes"][0]
    rig = Rig(workdir, board=board, runtime=runtime,
              device_id=device, token=TOKEN, uplink=uplink, observer=observer, on_line=agent_line,
              visitor=True, site={"gmt": time.localtime().tm_gmtoff / 3600, "telemetry_interval_s": 5,
                                  # CloudSolution hears commands only in replies: ask often.
                                  "heartbeat_s": 2 if uplink == "http" else 20})
    try:
        bench = await rig.start_bench(port=port, db=db)
    except OSError as e:
        raise CliError(f"cannot listen on 127.0.0.1:{port} ({e.strerror or e})",
                       "another bench or demo may run there: pass --port with a free port") from None
    # The management channel, beside the uplink, signed as a site should run
    # it (a key of this run's own: the bench signs, the agent checks).
    control_key = secrets.token_hex(16)
    bench.store.add_device(device, TOKEN, control_key=control_key)
    rig.site_overrides["control"] = {"url": bench.control_url, "key": control_key}
    # A person and an app to look with: an admin for the dashboard and an
    # app user bound to the device (fresh tokens each run, stored hashed).
    admin_token, user_token = secrets.token_hex(12), secrets.token_hex(12)
    bench.store.add_admin("demo-admin", admin_token)
    bench.store.add_user(user_token, None, "demo-user", [device])
    stop = stop_event()
    people = None
    try:
        _say(f"bench cloud  {rig.server_url()}   (SQLite: {db or workdir / 'bench.sqlite3'})")
        _say(f"dashboard    {bench.http_url}/   (open it in a browser: admins on loopback need no token)")
        _say(f"admin        demo-admin, token {admin_token}")
        ws = bench.http_url.replace("http://", "ws://", 1)
        _say(f"app user     uid demo-user (appid doorlink), token {user_token}, bound to {device}: Gizwits app API "
             f"{ws}/ws/app/v1, developer-center API {ws}/ws/dc/v1")
        _say(f"agent        {runtime} on the emulated board (boards/{rig.board_path.name}), "
             f"device {device}, uplink {uplink}")
        session = await rig.start_agent()
        if attendance:
            people = asyncio.create_task(_employees(session.reader, stop))
        ended = asyncio.create_task(session.wait())
        stopper = asyncio.create_task(stop.wait())
        waiter = asyncio.create_task(online.wait())
        await asyncio.wait([waiter, ended, stopper], timeout=ONLINE_WITHIN_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if online.is_set():
            _say("")
            if attendance:
                _say(f"The terminal is online. An emulated employee presses a finger every {PRESS_EVERY_S} s;")
                _say("each punch goes to the journal, then to the bench (PUNCH lines, table punches).")
            else:
                await _provision(bench.url, device, uplink)
                people = asyncio.create_task(_visitors(session.emulator, bench.url, device))
                _say(f"The door controller is online, with its {len(DEMO_USERS)} users. Every "
                     f"{VISIT_EVERY_S} s someone")
                _say("comes to the door: a card, a PIN, the exit button, a stranger's card, a door pushed open.")
                _say("Unlock it yourself, or look at its state, from another terminal with:")
                _say(f"    .venv/bin/doorlink command {DEVICE_ID} unlock --server {bench.url}")
                _say(f"    .venv/bin/doorlink command {DEVICE_ID} status --server {bench.url}")
                _say(f"    .venv/bin/doorlink control {DEVICE_ID} app/state --server {bench.url}")
                _say("(after each unlock an emulated visitor walks through: door open, door closed, relock)")
            _say("Ctrl-C stops the demo.")
            _say("")
        elif not stop.is_set() and not ended.done():
            _say(f"error: the agent did not come online within {ONLINE_WITHIN_S} s (see its log above)")
        await asyncio.wait([ended, stopper], timeout=duration, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if ended.done():
            raise CliError(f"the agent exited with code {session.proc.returncode}", "see its log above", code=1)
        return 0
    finally:
        if people:
            people.cancel()
        await rig.stop()
        _say("demo stopped")


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    d = sub.add_parser("demo", parents=[parents.runtime],
                       help="bench + emulated board + agent on 127.0.0.1, with a live log")
    d.add_argument("--port", type=port_number, default=8780, help="bench port (default %(default)s)")
    d.add_argument("--db", help="bench SQLite file (default: a temporary file)")
    d.add_argument("--duration", type=positive, help="stop after this many seconds")
    d.add_argument("--attendance", action="store_true",
                   help="an attendance terminal: emulated fingerprint reader, punches")
    d.add_argument("--uplink", choices=("json_ws", "xml_ws", "http"), default="json_ws",
                   help="cloud protocol (default json_ws; terminals usually speak xml_ws or http)")
    d.set_defaults(handler=run)
    return d


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(demo(args.port, args.db, args.duration, args.runtime, attendance=args.attendance,
                                uplink=args.uplink))
    except KeyboardInterrupt:
        return 0
