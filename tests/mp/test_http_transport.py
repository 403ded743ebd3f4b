# The agent's HttpClient and CloudSolution codec inside MicroPython against
# the real bench (the `bench` fixture): reg, sendlog, checklive on one
# keep-alive connection; what the bench stored is read back from its
# /api/records. Over https: tests/mp/test_https_transport.py.
from agent.codecs import cloudsolution as cs
from agent.errors import LinkClosed
from agent.transports.http import HttpClient

from mp_support import records

SN = "ZX12345678"
TOKEN = "unused"
BENCH_DEVICES = {SN: TOKEN}


async def round_trip(url, sn, ca_file=None):
    """reg, sendlog (a punch and a door event), checklive -> what each
    answered, or the LinkClosed message as "error"."""
    client = HttpClient(url, 5, ca_file=ca_file)
    session = cs.Session(sn, 0, {"modelname": "doorlink-mp"}, TOKEN)
    out = {}
    try:
        status, obj, _ = await client.post_json(cs.PATH, session.hello())
        reg = session.reply("reg", obj)
        out["reg"] = {"status": status, "ok": reg.ok, "cloudtime": reg.cloudtime, "nosenduser": reg.nosenduser}
        recs = [[21, 1781255730, "punch", "42", {"user": "42", "time": "2026-06-12T09:15:30", "action": "FP"}],
                [22, 1781255731, "event", "rex", {"door": "front"}]]
        status, obj, _ = await client.post_json(cs.PATH, session.sendlog(recs))
        reply = session.reply("sendlog", obj)
        out["sendlog"] = {"status": status, "ok": reply.ok, "acked_upto": cs.acked_upto(reply, 21, 2),
                          "access": reply.access}
        status, obj, _ = await client.post_json(cs.PATH, session.ping(1781255800))
        out["checklive"] = {"status": status, "ok": session.reply("checklive", obj).ok}
    except LinkClosed as e:
        out["error"] = str(e)
    finally:
        await client.close()
    out["connections"] = client.connections
    return out


async def assert_round_trip(res, url, sn, ca_file=None):
    assert "error" not in res, res
    assert res["reg"] == {"status": 200, "ok": True, "cloudtime": res["reg"]["cloudtime"], "nosenduser": True}
    assert isinstance(res["reg"]["cloudtime"], int)
    assert res["sendlog"] == {"status": 200, "ok": True, "acked_upto": 22, "access": 1}
    assert res["checklive"] == {"status": 200, "ok": True}
    assert res["connections"] == 1  # one keep-alive connection for all three
    punches = await records(url, sn, "punch", ca_file)
    assert [(r["log_id"], r["user_id"]) for r in punches] == [("21", "42")]
    events = await records(url, sn, "event", ca_file)
    assert [(e["event_type"], e["record_id"]) for e in events] == [("rex", 22)]


async def test_micropython_http_round_trip(bench):
    url = bench["http_url"]
    await assert_round_trip(await round_trip(url, SN), url, SN)


async def test_micropython_refused_port(unused_tcp_port):
    url = "http://127.0.0.1:%d" % unused_tcp_port
    res = await round_trip(url, SN)
    assert res["error"].startswith("connect to %s failed" % url), res
