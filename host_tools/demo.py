# `doorlink demo`: the bench cloud, an emulated board and the agent, all on
# 127.0.0.1, with a live log of what the cloud sees.
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from host_tools import live
from host_tools.bench import start_bench
from host_tools.paths import BOARDS
from host_tools.runner import start_board
from host_tools.signals import stop_event

DEVICE_ID = "demo-door-1"
TOKEN = "tok_demo_only"


def _say(line):
    print(line, flush=True)


async def demo(port=8780, db=None, duration=None, runtime="micropython", emulator_port=0,
               quiet_agent=False):
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
    bench.store.add_device(DEVICE_ID, TOKEN)
    site = workdir / "site.json"
    site.write_text(json.dumps({"server": bench.url, "device_id": DEVICE_ID, "token": TOKEN,
                                "telemetry_interval_s": 5, "heartbeat_s": 20}, indent=2))
    _say("bench cloud  %s   (SQLite: %s)" % (bench.url, db))
    _say("agent        %s on the emulated board (boards/emulated.json), device %s"
         % (runtime, DEVICE_ID))

    def agent_line(line):
        if not quiet_agent:
            _say("    agent | " + line)

    session = await start_board(BOARDS / "emulated.json", site, runtime=runtime,
                                on_line=agent_line, emulator_port=emulator_port, visitor=True,
                                journal=workdir / "journal")
    stop = stop_event()
    exited = asyncio.create_task(session.proc.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        got = await _first(online.wait(), exited, stopper, timeout=30)
        if online.is_set():
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
                                args.emulator_port))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(None))
