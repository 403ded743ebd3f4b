from agent.errors import CommandError
from agent.thing import ANY, INT, ONE_OF, TEXT, Thing

from support import araises


def _recorder(thing):
    seen = []
    thing.listen(lambda kind, name, value: seen.append((kind, name, value)))
    return seen


def test_update_notifies_only_changes():
    t = Thing("d")
    t.prop("door", "closed")
    seen = _recorder(t)
    t.update("door", "closed")
    t.update("door", "open")
    assert seen == [("property", "door", "open")]
    assert t.get("door") == "open"


def test_sample_and_emit():
    t = Thing("d")
    seen = _recorder(t)
    t.sample({"temperature": 21.5})
    t.emit("door_opened", {"door": "front"})
    assert seen == [("telemetry", None, {"temperature": 21.5}),
                    ("event", "door_opened", {"door": "front"})]
    assert t.snapshot()["temperature"] == 21.5


async def test_call_runs_handler():
    t = Thing("d")

    async def unlock(payload):
        return {"ms": payload.get("ms", 1)}

    t.command("unlock", unlock, {"ms": (INT, 1, 10)})
    assert await t.call("unlock", {"ms": 5}) == {"ms": 5}


async def test_a_payload_is_checked_against_its_command_before_any_handler_runs():
    t = Thing("d")
    ran = []

    async def handler(payload):
        ran.append(payload)
        return {}
    t.command("unlock", handler, {"ms": (INT, 100, 60000), "source": (ONE_OF, ("cloud", "cloud_access")),
                                  "note": (TEXT, 8), "value": (ANY,)}, ("ms",))
    for payload, words in (({"ms": 50}, "from 100 to 60000"), ({"ms": "5"}, "an integer"),
                           ({"ms": True}, "an integer"), ({"ms": 500, "source": "fingerprint"}, "one of cloud"),
                           ({"ms": 500, "source": "x" * 5000}, "one of"), ({"ms": 500, "note": "x" * 9}, "8 char"),
                           ({"ms": 500, "evil": 1}, "takes no field 'evil'"), ({}, "needs the field 'ms'")):
        e = await araises(CommandError, t.call("unlock", payload))
        assert words in str(e), (payload, str(e))
    assert ran == []
    assert await t.call("unlock", {"ms": 500, "source": "cloud_access", "value": [1, {"a": 2}]}) == {}


async def test_emit_reports_whether_a_listener_could_keep_it():
    t = Thing("d")
    answers = [None, True]
    t.listen(lambda kind, name, value: answers[0])
    t.listen(lambda kind, name, value: answers[1])
    assert t.emit("door_opened", {}) is True   # None: nothing to keep there
    answers[1] = False
    assert t.emit("door_opened", {}) is False


async def test_unknown_command_lists_known():
    t = Thing("d")

    async def noop(payload):
        return None

    t.command("lock", noop)
    e = await araises(CommandError, t.call("explode", {}))
    assert "explode" in str(e) and "lock" in str(e)


async def test_payload_must_be_object():
    t = Thing("d")

    async def noop(payload):
        return None

    t.command("lock", noop)
    await araises(CommandError, t.call("lock", [1, 2]))


async def test_write_readonly_and_writable():
    t = Thing("d")
    t.prop("door", "closed")
    got = []

    async def set_mode(v):
        got.append(v)

    t.prop("mode", "auto", setter=set_mode)
    await t.write("mode", "open")
    assert got == ["open"]
    e = await araises(CommandError, t.write("door", "open"))
    assert "read-only" in str(e)
    await araises(CommandError, t.write("nothing", 1))
