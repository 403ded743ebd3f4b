# The management channel's site table (agent/config.py `control`) and its
# dispatch (agent/uplinks/control.py answer()), on both runtimes: every
# request gets one reply; an unknown, unsupported or failing one gets a
# clear error and the channel goes on.
import json

from agent import config, log
from agent.errors import CommandError, ConfigError
from agent.uplinks.control import ControlChannel

from support import raises, tmpdir, write_json

SITE = {"server": "ws://127.0.0.1:1/ws", "device_id": "d1", "token": "t1"}


def _site(control):
    return config.load_site(write_json(tmpdir(), "site.json", dict(SITE, control=control)))


def test_the_control_table_is_off_by_default_and_checked_field_by_field():
    assert config.load_site(write_json(tmpdir(), "site.json", SITE))["control"] is None
    cfg = _site({"url": "wss://ctl.example:443/control"})["control"]
    assert cfg == {"url": "wss://ctl.example:443/control", "token": None, "key": None, "max_message": 16384,
                   "liveness_s": 30, "scripts": False}
    assert raises(ConfigError, _site, {}).field == "control.url"
    assert "ws:// or wss://" in str(raises(ConfigError, _site, {"url": "http://x/control"}))
    assert raises(ConfigError, _site, {"url": "ws://x/c", "max_message": 10 ** 7}).field == "control.max_message"
    assert raises(ConfigError, _site, {"url": "ws://x/c", "liveness_s": 0}).field == "control.liveness_s"
    assert raises(ConfigError, _site, {"url": "ws://x/c", "colour": "red"}).field == "control.colour"
    # A short key is refused without being shown.
    e = raises(ConfigError, _site, {"url": "ws://x/c", "key": "hunter2"})
    assert e.field == "control.key" and "hunter2" not in str(e)
    path = write_json(tmpdir(), "site.json", dict(SITE, control="ws://x/c"))
    assert raises(ConfigError, config.load_site, path).field == "control"


def test_the_command_line_url_enables_the_channel_or_replaces_the_files():
    path = write_json(tmpdir(), "site.json", SITE)
    assert config.load_site(path, None, "ws://127.0.0.1:9/control")["control"]["url"] == "ws://127.0.0.1:9/control"
    path = write_json(tmpdir(), "site.json", dict(SITE, control={"url": "ws://a/c", "liveness_s": 5}))
    cfg = config.load_site(path, None, "ws://b/c")["control"]
    assert cfg["url"] == "ws://b/c" and cfg["liveness_s"] == 5
    from agent.main import parse_args
    assert parse_args(["--board", "b.json", "--site", "s.json", "--control", "ws://b/c"])["control"] == "ws://b/c"


class Crash(Exception):
    pass


def _channel(key=None):
    async def echo(body):
        return {"got": body}

    async def refuse(body):
        raise CommandError("no door here")

    async def crash(body):
        raise Crash("handler bug")

    handlers = {"test/echo": echo, "test/refuse": refuse, "test/crash": crash}
    control = {"url": "ws://127.0.0.1:1/control"}
    if key:
        control["key"] = key
    return ControlChannel(_site(control), handlers, None)


async def test_each_request_is_answered_under_its_type():
    ch = _channel()
    assert json.loads(await ch.answer('{"type": "test/echo", "body": [1, "é"]}')) == {
        "type": "test/echo", "body": {"got": [1, "é"]}, "error": ""}
    assert json.loads(await ch.answer('{"type": "test/refuse"}')) == {"type": "test/refuse", "error": "no door here"}
    assert json.loads(await ch.answer('{"type": "x/y"}'))["error"] == "unknown request type x/y"
    assert json.loads(await ch.answer("[]"))["type"] == ""


async def test_a_crashing_handler_is_an_error_reply_logged_in_full_once():
    ch = _channel()
    before = log.ring.newest()
    for _ in range(3):
        reply = json.loads(await ch.answer('{"type": "test/crash"}'))
        assert reply["type"] == "test/crash" and "internal error" in reply["error"] and "handler bug" in reply["error"]
    logged = [line for _, line in log.ring.tail(before)["lines"] if "crashed" in line]
    assert len(logged) == 1
    assert json.loads(await ch.answer('{"type": "test/echo"}'))["error"] == ""


async def test_with_a_key_only_signed_requests_reach_a_handler():
    ch = _channel("k" * 16)
    reply = json.loads(await ch.answer('{"type": "test/echo", "body": 1}'))
    assert "unsigned request refused" in reply["error"] and "body" not in reply


async def test_a_signed_request_from_before_the_agent_started_is_refused_as_a_replay():
    # The nonces of the last run are gone with its RAM: a system/reboot
    # recorded then and replayed within its 60 s must not reboot it again,
    # even when the agent is back within the same second.
    from agent import clock
    from agent.codecs.signing import sign
    key = "k" * 16
    started = clock.now()   # at most the channel's start: signed in its second
    ch = _channel(key)

    def signed(ts, nonce):
        sig = sign(key, "d1", "test/echo", ts, nonce)
        return json.dumps({"type": "test/echo", "ts": ts, "nonce": nonce, "sig": sig})

    assert "old request" in json.loads(await ch.answer(signed(started - 2, "01" * 16)))["error"]
    assert "old request" in json.loads(await ch.answer(signed(started, "02" * 16)))["error"]
    await ch._past_floor()   # what the channel does before it first connects
    assert json.loads(await ch.answer(signed(clock.now(), "03" * 16)))["error"] == ""


async def test_with_a_key_every_reply_to_a_signed_request_is_signed_for_it():
    from agent import clock
    from agent.codecs.signing import open_reply, sign
    key = "k" * 16
    ch = _channel(key)
    await ch._past_floor()

    def signed(req_type, nonce, body=None):
        ts = clock.now()
        msg = {"type": req_type, "ts": ts, "nonce": nonce, "sig": sign(key, "d1", req_type, ts, nonce, body)}
        if body is not None:
            msg["body"] = body
        return json.dumps(msg)

    cases = (("0a" * 16, signed("test/echo", "0a" * 16, {"n": [1, "é"]}), ""),
             ("0b" * 16, signed("test/refuse", "0b" * 16), "no door here"),
             ("0c" * 16, signed("x/y", "0c" * 16), "unknown request type"))
    for nonce, request, error in cases:
        wire = await ch.answer(request)
        text = open_reply(key, "d1", nonce, wire)
        assert text is not None and json.loads(wire)["re"] == nonce, wire
        assert error in json.loads(text)["error"] and (error or json.loads(text)["body"] == {"got": {"n": [1, "é"]}})
        assert open_reply(key, "d1", "ff" * 16, wire) is None          # bound to its request
        assert open_reply(key, "d2", nonce, wire) is None              # and to this device
        assert open_reply("another-key-0123456", "d1", nonce, wire) is None
        assert open_reply(key, "d1", nonce, wire.replace('"error"', '"errer"')) is None
    # A refused request's reply is not signed: signed, a man in the middle
    # could collect a "refused" under a real request's nonce with a
    # tampered copy of it, then deliver the original and drop its answer.
    for request, error in ((signed("test/echo", "0d" * 16, {"n": 1}).replace('"n": 1', '"n": 2'), "bad signature"),
                           (signed("test/echo", "0a" * 16, {"n": [1, "é"]}), "replayed"),
                           ('{"type": "test/echo"}', "unsigned request refused")):
        plain = await ch.answer(request)
        assert "sig" not in json.loads(plain) and error in json.loads(plain)["error"], plain


def test_a_channel_without_a_key_says_at_start_that_anyone_on_the_way_can_drive_it():
    log.set_level("info")   # another test of this process may have turned the console down
    before = log.ring.newest()
    _channel()
    said = [line for _, line in log.ring.tail(before)["lines"] if "not signed" in line]
    assert len(said) == 1 and "ws://127.0.0.1:1/control" in said[0] and "network path" in said[0]
    before = log.ring.newest()
    _channel("k" * 16)
    assert not [line for _, line in log.ring.tail(before)["lines"] if "not signed" in line]


async def test_a_flood_of_refused_requests_is_counted_each_and_said_once():
    # Red team: each refusal was a log line, so anyone on a ws:// path could
    # push what the door said out of the log kept on flash.
    log.set_level("info")
    ch = _channel("k" * 16)
    before, counted = log.ring.newest(), log.counters.get("control_refused", 0)
    for _ in range(50):
        assert "unsigned request refused" in json.loads(await ch.answer('{"type": "system/reboot"}'))["error"]
    said = [line for _, line in log.ring.tail(before)["lines"] if "request refused" in line]
    assert len(said) == 1
    assert log.counters["control_refused"] - counted == 50
