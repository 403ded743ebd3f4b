# The CloudSolution uplink against a scripted server, on both runtimes:
# `access: 1` opens the door for a fresh punch only (never for a backlog,
# even when the same reply moves the clock), server commands riding on
# replies run and are answered, and a refused registration carries no orders.
import asyncio

from agent import clock
from agent.codecs.values import epoch_wall
from agent.journal import Journal
from agent.thing import INT, ONE_OF, Thing
from agent.uplinks.http import HttpUplink

from support import tmpdir

SITE = {"server": "http://x", "device_id": "ZX1", "token": "t", "gmt": 0, "heartbeat_s": 0.05,
        "connect_timeout_s": 2, "ca_file": None, "backoff_base_s": 0.01, "backoff_cap_s": 0.05,
        "backoff_reset_s": 1}


class ScriptedCloud:
    """Answers like a CloudSolution server; `extra` rides on every reply."""

    def __init__(self, access=0, reg_ok=True, extra=None):
        self.access = access
        self.reg_ok = reg_ok
        self.extra = dict(extra or {})
        self.requests = []

    async def post_json(self, path, obj):
        self.requests.append(obj)
        await asyncio.sleep(0)
        word = obj.get("cmd") or obj.get("ret")
        reply = {"ret": word, "result": True}
        if word == "reg":
            reply["result"] = self.reg_ok
        elif word == "sendlog":
            reply.update({"count": obj["count"], "logindex": obj["logindex"], "access": self.access})
        reply.update(self.extra)
        self.extra.pop("cmd", None)  # a command is handed out once
        return 200, reply, b""

    async def close(self):
        pass


class Door:
    def __init__(self, thing):
        self.opened = []
        thing.command("unlock", self.unlock, {"source": (ONE_OF, ("cloud", "cloud_access")), "door": (INT, 1, 4)})

    async def unlock(self, payload):
        self.opened.append(payload.get("source"))
        return {"lock": "unlocked"}


async def _run(cloud, journal, done, seconds=3, punch_now=False):
    thing = Thing("ZX1")
    door = Door(thing)
    up = HttpUplink(SITE, thing, journal, client=cloud)
    if punch_now:  # a person at the reader now: the punch goes through the Thing, as the reader's does
        thing.emit("punch", {"user": "7", "time": epoch_wall(clock.now())})
    task = asyncio.create_task(up.run())
    try:
        for _ in range(int(seconds * 100)):
            if done(door):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.sleep(0)
    return door


async def test_access_opens_for_a_fresh_punch_not_for_a_backlog():
    j = Journal(tmpdir() + "/j")
    t = clock.now() - 3600  # made an hour ago, during an outage, before a reboot
    j.append("punch", None, {"user": "7", "time": epoch_wall(t)}, t)
    cloud = ScriptedCloud(access=1)
    door = await _run(cloud, j, lambda d: j.pending() == 0, seconds=1)
    assert j.pending() == 0 and door.opened == []
    door = await _run(cloud, j, lambda d: d.opened, punch_now=True)
    assert door.opened == ["cloud_access"] and j.pending() == 0


async def test_a_clock_moved_by_the_same_reply_does_not_age_a_fresh_punch():
    ahead = epoch_wall(clock.now() + 7200) + "Z"
    try:
        door = await _run(ScriptedCloud(access=1, extra={"cloudtime": ahead}), Journal(tmpdir() + "/j"),
                          lambda d: d.opened, punch_now=True)
    finally:
        clock.set_from_cloud(clock.now() - 7200)
    assert door.opened == ["cloud_access"]


async def test_a_command_riding_on_a_reply_runs_and_is_answered():
    cloud = ScriptedCloud(extra={"cmd": {"cmd": "opendoor", "doornum": 1}})
    door = await _run(cloud, Journal(tmpdir() + "/j"),
                      lambda d: [r for r in cloud.requests if r.get("ret") == "opendoor"])
    assert door.opened == ["cloud"]
    answer = [r for r in cloud.requests if r.get("ret") == "opendoor"][0]
    assert answer == {"ret": "opendoor", "sn": "ZX1", "token": "t", "result": True, "lock": "unlocked"}


async def test_every_request_carries_the_site_token():
    # reg, sendlog, checklive and command answers: the server checks each.
    cloud = ScriptedCloud(extra={"cmd": {"cmd": "opendoor"}})
    j = Journal(tmpdir() + "/j")
    j.append("punch", None, {"user": "7", "time": epoch_wall(clock.now())}, clock.now())
    await _run(cloud, j, lambda d: len({r.get("cmd") or r.get("ret") for r in cloud.requests}) >= 4)
    words = {r.get("cmd") or r.get("ret") for r in cloud.requests}
    assert {"reg", "sendlog", "checklive", "opendoor"} <= words
    assert [r["token"] for r in cloud.requests] == ["t"] * len(cloud.requests)


async def test_an_unknown_word_is_answered_not_run():
    cloud = ScriptedCloud(extra={"cmd": {"cmd": "initsys"}})
    await _run(cloud, Journal(tmpdir() + "/j"), lambda d: [r for r in cloud.requests if r.get("ret")])
    answer = [r for r in cloud.requests if r.get("ret") == "initsys"][0]
    assert answer["result"] is False and "not supported" in answer["reason"]


async def test_a_refused_registration_carries_no_orders():
    cloud = ScriptedCloud(reg_ok=False, extra={"cmd": {"cmd": "opendoor"}})
    door = await _run(cloud, Journal(tmpdir() + "/j"), lambda d: len(cloud.requests) >= 3, seconds=1)
    assert door.opened == [] and not [r for r in cloud.requests if r.get("ret")]
    assert [r["cmd"] for r in cloud.requests[:3]] == ["reg", "reg", "reg"]  # retried, with backoff


async def test_the_fresh_punch_travels_alone():
    # `access` answers a whole batch: a backlog must not ride with the person
    # at the door, or the grant would be read as one for an older punch.
    j = Journal(tmpdir() + "/j")
    t = clock.now() - 3600
    for _ in range(3):
        j.append("punch", None, {"user": "5", "time": epoch_wall(t)}, t)
    cloud = ScriptedCloud(access=1)
    door = await _run(cloud, j, lambda d: d.opened and j.pending() == 0, punch_now=True)
    batches = [r["logindex"] for r in cloud.requests if r.get("cmd") == "sendlog"]
    counts = [r["count"] for r in cloud.requests if r.get("cmd") == "sendlog"]
    assert batches == [1, 4] and counts == [3, 1]   # the backlog, then the fresh punch alone
    assert door.opened == ["cloud_access"]


async def _ask(cloud, user, credential="12345678", source="card", online=True):
    """ask_access() on a registered uplink (or one with no link) -> (verdict,
    the sendlog records the cloud saw, the doors opened directly)."""
    thing = Thing("ZX1")
    door = Door(thing)
    up = HttpUplink(SITE, thing, Journal(tmpdir() + "/j"), client=cloud)
    task = asyncio.create_task(up.run()) if online else None
    try:
        for _ in range(200):
            if up.online or not online:
                break
            await asyncio.sleep(0.01)
        verdict = await asyncio.wait_for(up.ask_access("front", source, credential, user), 2)
    finally:
        if task is not None:
            task.cancel()
            await asyncio.sleep(0)
    sent = [rec for r in cloud.requests if r.get("cmd") == "sendlog" for rec in r["record"]]
    return verdict, sent, door.opened


async def test_a_cloud_that_decides_is_asked_with_a_punch_and_its_access_is_the_verdict():
    # access 1: granted, and the controller (not the uplink) opens the door
    verdict, sent, opened = await _ask(ScriptedCloud(access=1), "5")
    assert verdict is True and opened == []
    assert [(r["enrollid"], r["mode"]) for r in sent] == [(5, 0)]
    verdict, sent, opened = await _ask(ScriptedCloud(access=0), "5")
    assert verdict is False and opened == []
    # a reply without `access`: no verdict, the local decision stands
    verdict, _, _ = await _ask(ScriptedCloud(access=None), "5")
    assert verdict is None
    # a card or finger the board does not know goes under a name of its own, never as a user's enrollid
    _, sent, _ = await _ask(ScriptedCloud(access=0), None)
    assert sent[0]["enrollid"] == "card:12345678"
    _, sent, _ = await _ask(ScriptedCloud(access=0), None, "17", "fingerprint")
    assert (sent[0]["enrollid"], sent[0]["mode"]) == ("finger:17", 1)


async def test_with_no_link_the_cloud_is_not_asked():
    cloud = ScriptedCloud(access=1)
    verdict, sent, _ = await _ask(cloud, "5", online=False)
    assert verdict is None and cloud.requests == []
