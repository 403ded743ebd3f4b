"""The seed's own Node.js control server (tests/node/server.js: the protocol
document's "Server Example Code" on the `ws` npm package, installed by `make
venv`) drives the agent. The server checks no token and asks `app/state` as
a device connects, then pings every 5 s; the agent, given the server by
--control, answers a well-formed state under both runtimes and stays
connected through the pings. Skipped, with the reason, where there is no
node or no ws package."""

import asyncio
import contextlib
import json
import os
import shutil
import time

import pytest

from host_tools.paths import ROOT

from e2e_support import DEVICE, eventually

NODE_DIR = ROOT / "tests" / "node"
RECEIVED = "received "      # server.js: each message as it came
PING_S = 5                  # the seed's ping interval
LIVENESS_S = 6              # just over it: a ping the agent did not see drops the link


class NodeServer:
    """server.js under node on 127.0.0.1, any free port; its lines kept."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def found(self, start):
        return [line for line in self.lines if line.startswith(start)]

    async def port(self):
        """The port it listens on, once it does (its output ends if it fails)."""
        await eventually(lambda: self.found("listening on ") or self._reader.done(), 15)
        listening = self.found("listening on ")
        assert listening, "node server.js did not start:\n" + "\n".join(self.lines)
        return int(listening[0].split()[-1])

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self._reader, 5)


@pytest.fixture
async def node_server():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the seed's Node.js control server cannot run "
                    "(install Node.js and npm, then `make venv`)")
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").is_file():
        pytest.skip("the ws npm package is not installed in tests/node: run `make venv` (npm ci there)")
    proc = await asyncio.create_subprocess_exec(
        node, "server.js", cwd=NODE_DIR, env=dict(os.environ, PORT="0"), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    server = NodeServer(proc)
    try:
        yield server
    finally:
        await server.stop()
        print("---- node server output ----\n" + "\n".join(server.lines))


async def test_the_seeds_node_server_gets_a_well_formed_state(runtime, rig, bench, node_server):
    port = await node_server.port()
    # The site file's control table names a dead server; --control replaces it.
    site = rig.write_site(control={"url": "ws://127.0.0.1:9/", "liveness_s": LIVENESS_S})
    await rig.start_agent(site=site, runtime=runtime, control="ws://127.0.0.1:%d/" % port)
    connected = await rig.wait_for("control: connected", timeout=30)
    since = time.monotonic()

    got = await eventually(lambda: node_server.found(RECEIVED), timeout=15)
    msg = json.loads(got[0][len(RECEIVED):])
    assert msg["type"] == "app/state" and msg["error"] == "", msg
    body = msg["body"]
    assert set(body) == {"app", "script", "system"}
    assert isinstance(body["app"]["version"], str) and body["app"]["version"]
    assert body["app"]["license"] == ""
    assert body["script"] == {"select": "", "running": False}
    system = body["system"]
    assert set(system) == {"os", "name", "sn", "ip", "battery", "log"}
    assert system["sn"] == DEVICE and system["name"] == "emulated" and system["battery"] == "mains"
    assert system["os"] == ("micropython" if runtime == "micropython" else "linux")
    assert isinstance(system["ip"], str) and isinstance(system["log"], str) and system["log"]
    # The seed's own print of the body (Node's notation) came out too.
    await eventually(lambda: any("sn: '%s'" % DEVICE in line for line in node_server.lines), timeout=5)

    # Past the first ping: the link holds, it is still the one connection.
    await asyncio.sleep(max(0.0, PING_S + 3.5 - (time.monotonic() - since)))
    later = rig.lines[connected + 1:]
    assert not [line for line in later if "control: link down" in line or "control: connected" in line], \
        rig.output(40)
    assert len(node_server.found(RECEIVED)) == 1, node_server.lines
