# `doorlink demo`: the bench cloud, an emulated board and the agent, all on
# 127.0.0.1, with a live log of what the cloud sees.
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from host_tools import live
from host_tools.bench import start_bench
from host_tools.paths import BOARDS
from host_tools.runner import start_board
from host_tools.signals import stop_event

DEVICE_ID = "demo-door-1"
TERMINAL_ID = "demo-terminal-1"
TOKEN = "tok_demo_only"
PRESS_EVERY_S = 5


def _say(line):
    print(line, flush=True)


async def _employees(reader, stop):
    """An emulated queue of employees: fingers 1-3 enrolled, one pressed
    every few seconds (on, read by the agent, off)."""
    import random
    for finger in (1, 2, 3):
        reader.enroll(finger)
    rng = random.Random(7)
    while not stop.is_set():
        await asyncio.sleep(PRESS_EVERY_S)
        reader.place(rng.choice((1, 2, 3)))
        await asyncio.sleep(1.0)
        reader.lift()


async def demo(port=8780, db=None, duration=None, runtime="micropython", emulator_port=0,
               quiet_agent=False, attendance=False, uplink="json_ws"):
    workdir = Path(tempfile.mkdtemp(prefix="doorlink-demo-"))
    db = db or str(workdir / "bench.sqlite3")
    online = asyncio.Event()

    def observer(kind, data):
        if kind == "device_online":
            online.set()
        line = live.render(kind, data)
        if line:
            _say(line)

    try:
        bench = await start_bench("127.0.0.1", port, db, observer=observer)
    except OSError as e:
        _say("error: cannot listen on 127.0.0.1:%d (%s); pass --port with a free port"
             % (port, e.strerror or e))
        return 1
    device = TERMINAL_ID if attendance else DEVICE_ID
    board = BOARDS / ("emulated-attendance.json" if attendance else "emulated.json")
    bench.store.add_device(device, TOKEN)
    server = bench.http_url if uplink == "http" else bench.url
    site = workdir / "site.json"
    site.write_text(json.dumps({"server": server, "device_id": device, "token": TOKEN, "uplink": uplink,
                                "gmt": time.localtime().tm_gmtoff / 3600,
                                "telemetry_interval_s": 5, "heartbeat_s": 20}, indent=2))
    _say("bench cloud  %s   (SQLite: %s)" % (server, db))
    _say("agent        %s on the emulated board (boards/%s), device %s, uplink %s"
         % (runtime, board.name, device, uplink))

    def agent_line(line):
        if not quiet_agent:
            _say("    agent | " + line)

    session = await start_board(board, site, runtime=runtime,
                                on_line=agent_line, emulator_port=emulator_port, visitor=True,
                                journal=workdir / "journal")
    stop = stop_event()
    people = asyncio.create_task(_employees(session.reader, stop)) if attendance else None
    exited = asyncio.create_task(session.proc.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        got = await _first(online.wait(), exited, stopper, timeout=30)
        if online.is_set() and attendance:
            _say("")
            _say("The terminal is online. An emulated employee presses a finger every %d s;" % PRESS_EVERY_S)
            _say("each punch goes to the journal, then to the bench (PUNCH lines, table punches).")
            _say("Ctrl-C stops the demo.")
            _say("")
        elif online.is_set():
            _say("")
            _say("The device is online. Unlock the door from another terminal with:")
            _say("    .venv/bin/doorlink command %s unlock --server %s" % (DEVICE_ID, bench.url))
            _say("(an emulated visitor then walks through: door_opened, door_closed, relock)")
            _say("Ctrl-C stops the demo.")
            _say("")
        elif got is None and not stop.is_set():
            _say("error: the agent did not come online within 30 s (see its log above)")
        await _first(exited, stopper, timeout=duration)
        if exited.done():
            _say("error: the agent exited with code %s" % session.proc.returncode)
            return 1
        return 0
    finally:
        stopper.cancel()
        if people:
            people.cancel()
        await session.stop()
        await bench.stop()
        _say("demo stopped")


async def _first(*aws, timeout=None):
    """Wait for the first awaitable; returns its result or None on timeout."""
    tasks = [a if isinstance(a, asyncio.Task) else asyncio.ensure_future(a) for a in aws]
    done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for t in tasks:
        if t not in done and t not in aws:
            t.cancel()
    return next(iter(done)).result() if done else None


def main(args):
    try:
        return asyncio.run(demo(args.port, args.db, args.duration, args.runtime,
                                args.emulator_port, attendance=args.attendance, uplink=args.uplink))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(None))
