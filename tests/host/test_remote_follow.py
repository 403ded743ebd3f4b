"""`doorlink logs --device` (host_tools/remote_follow.py) against a real
bench and a scripted JSON device speaking through the agent's own codec:
what a device answers is not trusted, and every way a follow cannot go on
ends in one message with the fix, never a traceback."""

import asyncio
import time

import pytest

from agent.codecs import json_ws
from agent.codecs.session import Command
from host_tools.cli_common import CliError
from host_tools.remote_follow import RemoteFollower

DEV = "follow-dev"
TOKEN = "tok_follow"
BENCH_DEVICES = {DEV: TOKEN}
TIMEOUT = 10


async def _device(session, bench, answer):
    """A registered device whose log_tail answers are answer(payload) ->
    (ok, result, error); runs until cancelled."""
    codec = json_ws.Session(DEV, TOKEN)
    ws = await session.ws_connect(bench.url)
    await ws.send_str(codec.hello())
    codec.receive((await ws.receive(timeout=TIMEOUT)).data)
    assert codec.state != json_ws.CONNECTING

    async def serve():
        async for msg in ws:
            got = codec.receive(msg.data)
            if isinstance(got, Command):
                await ws.send_str(codec.command_result(got.id, got.name, *answer(got.payload)))
    return ws, asyncio.ensure_future(serve())


async def _follow(bench, seconds=3.0, **kw):
    lines = []
    follower = RemoteFollower(bench.url, DEV, lines.append, interval=0.1, **kw)
    await asyncio.wait_for(follower.run(time.monotonic() + seconds), seconds + TIMEOUT)
    return lines


@pytest.mark.parametrize("result, why", [
    ("lines", "not an object"),
    ({"boot": 1, "next": 0, "dropped": 0, "lines": "x"}, "'lines' is not a list"),
    ({"boot": "1", "next": 0, "dropped": 0, "lines": []}, "'boot' is not a count"),
    ({"boot": 1, "next": -5, "dropped": 0, "lines": []}, "'next' is not a count"),
    ({"boot": 1, "next": 0, "dropped": 0, "lines": [[1, 2]]}, "a line is not [number, text]"),
    ({"boot": 1, "next": 0, "dropped": 0, "lines": [[1, "x"]] * 51}, "'lines' is not a list of at most 50"),
])
async def test_an_unreadable_answer_ends_the_follow_with_what_is_wrong(bench, session, result, why):
    ws, served = await _device(session, bench, lambda p: (True, result, None))
    try:
        with pytest.raises(CliError) as e:
            await _follow(bench)
        assert why in str(e.value) and "unreadable" in str(e.value)
    finally:
        served.cancel()
        await ws.close()


async def test_a_device_without_log_tail_is_named_with_the_fix(bench, session):
    ws, served = await _device(session, bench, lambda p: (False, None, "unknown command 'log_tail' (known: x)"))
    try:
        with pytest.raises(CliError) as e:
            await _follow(bench)
        assert "refused log_tail" in str(e.value) and "doorlink flash" in str(e.value)
    finally:
        served.cancel()
        await ws.close()


async def test_what_a_device_logged_cannot_drive_the_terminal_and_overflow_is_marked(bench, session):
    asks = []

    def answer(payload):
        asks.append(payload)
        if len(asks) == 1:
            return True, {"boot": 7, "next": 2, "dropped": 9, "more": False,
                          "lines": [[1, "evil \x1b]0;owned\x07 done"], [2, "ok"]]}, None
        if len(asks) == 2:
            return True, {"boot": 7, "next": 40, "dropped": 30, "more": False, "lines": [[40, "later"]]}, None
        return True, {"boot": 7, "next": 40, "dropped": 0, "more": False, "lines": []}, None

    ws, served = await _device(session, bench, answer)
    try:
        lines = await _follow(bench, seconds=1.0)
    finally:
        served.cancel()
        await ws.close()
    # The history before the first ask is nobody's loss; later overflow is.
    assert lines == ["evil ^[]0;owned^G done", "ok", "-- 30 lines lost (ring overflowed) --", "later"]
    assert asks[0] == {"after": 0, "max": 50} and asks[1]["after"] == 2 and asks[2]["after"] == 40


async def test_a_bench_that_wants_an_admin_token_says_how_to_give_it(tmp_path):
    from host_tools.bench import start_bench
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "auth.sqlite3"), require_auth=True)
    try:
        with pytest.raises(CliError) as e:
            await _follow(bench)
        assert "admin authentication required" in str(e.value) and "--token" in str(e.value)
    finally:
        await asyncio.wait_for(bench.stop(), TIMEOUT)
