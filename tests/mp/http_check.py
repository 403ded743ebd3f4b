# The agent's HttpClient and CloudSolution codec inside MicroPython against
# a running bench: reg, sendlog, checklive on one keep-alive connection.
#   micropython tests/mp/http_check.py URL SN [CA_FILE]
# Prints one JSON result line (errors included: the host test reads them).
import asyncio
import json
import sys

from agent.codecs import cloudsolution as cs
from agent.errors import LinkClosed
from agent.transports.http import HttpClient

PATH = cs.PATH


async def main(url, sn, ca_file):
    client = HttpClient(url, 5, ca_file=ca_file)
    session = cs.Session(sn, 0, {"modelname": "doorlink-mp"})
    out = {}
    try:
        status, obj, _ = await client.post_json(PATH, session.hello())
        reg = session.reply("reg", obj)
        out["reg"] = {"status": status, "ok": reg.ok, "cloudtime": reg.cloudtime, "nosenduser": reg.nosenduser}
        recs = [[21, 1781255730, "punch", "42", {"user": "42", "time": "2026-06-12T09:15:30", "action": "FP"}],
                [22, 1781255731, "event", "exit_button", {"door": "front"}]]
        status, obj, _ = await client.post_json(PATH, session.sendlog(recs))
        reply = session.reply("sendlog", obj)
        out["sendlog"] = {"status": status, "ok": reply.ok, "acked_upto": cs.acked_upto(reply, 21, 2),
                          "access": reply.access}
        status, obj, _ = await client.post_json(PATH, session.ping(1781255800))
        out["checklive"] = {"status": status, "ok": session.reply("checklive", obj).ok}
    except LinkClosed as e:
        out["error"] = str(e)
    finally:
        await client.close()
    out["connections"] = client.connections
    print(json.dumps(out))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None))
