"""script/* end to end, on each runtime: a technician's `doorlink control`
puts a script (--file), lists it, gets it back (--out), runs it (it logs and
shows a line on the terminal), seals it (script/encrypt: then script/get
refuses and the text is not on the device's flash, yet it runs), runs one
that loops without sleeping (stopped and logged; the channel goes on), stops
a polite endless one and deletes them - through the bench's control server
and the agent's real management channel."""

import base64
import json

from host_tools.bench.app import CONTROL

from e2e_support import DEVICE, doorlink_control, eventually


async def doorlink(*args):
    return await doorlink_control(DEVICE, *args)


def said(rig, text):
    return text in rig.output()


async def test_scripts_through_the_bench_with_doorlink_control(runtime, rig, bench, tmp_path):
    control = bench.app[CONTROL]
    url = bench.url.rsplit("/", 1)[0] + "/control"
    await rig.start_agent(site=rig.write_site(control={"url": url, "scripts": True}), runtime=runtime)
    await eventually(lambda: DEVICE in control.online(), timeout=20)
    server = ("--server", bench.url)

    hello = tmp_path / "hello.py"
    hello.write_text("n = 0\nfor i in range(3):\n    n += i\n    await sleep(1)\nlog('hello from', n)\n")
    code, out, err = await doorlink("script/put", '{"name": "hello.py"}', "--file", str(hello), *server)
    assert code == 0, err
    code, out, err = await doorlink("script/list", *server)
    assert code == 0 and json.loads(out)["body"] == ["hello.py"], (out, err)
    back = tmp_path / "back.py"
    code, out, err = await doorlink("script/get", '{"name": "hello.py"}', "--out", str(back), *server)
    assert code == 0 and back.read_bytes() == hello.read_bytes(), err

    code, out, err = await doorlink("script/run", '{"name": "hello.py"}', *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "hello.py: hello from 3"), timeout=10)

    code, out, err = await doorlink("script/encrypt", '{"name": "hello.py"}', *server)
    assert code == 0, err
    stored = (rig.journal / ".scripts" / "hello.py").read_bytes()
    assert stored.startswith(b"DLS1") and b"hello" not in stored
    code, out, err = await doorlink("script/get", '{"name": "hello.py"}', *server)
    assert code == 1 and "sealed" in err, (out, err)
    code, out, err = await doorlink("script/run", '{"name": "hello.py"}', *server)
    assert code == 0, err
    await eventually(lambda: rig.output().count("hello.py: hello from 3") == 2, timeout=10)

    # A loop that never sleeps is stopped; the channel answers straight after.
    body = json.dumps({"name": "spin.py", "data": base64.b64encode(b"while True:\n    pass\n").decode()})
    code, out, err = await doorlink("script/put", body, *server)
    assert code == 0, err
    code, out, err = await doorlink("script/run", '{"name": "spin.py"}', *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "spin.py stopped: ran over 20 ms without await sleep(ms)"), timeout=10)
    code, out, err = await doorlink("app/state", *server)
    assert code == 0 and json.loads(out)["body"]["script"] == {"select": "spin.py", "running": False}, out

    # A polite endless one runs until stopped.
    body = json.dumps({"name": "tick.py", "data": base64.b64encode(b"while True:\n    await sleep(50)\n").decode()})
    assert (await doorlink("script/put", body, *server))[0] == 0
    assert (await doorlink("script/run", '{"name": "tick.py"}', *server))[0] == 0
    code, out, err = await doorlink("app/state", *server)
    assert json.loads(out)["body"]["script"] == {"select": "tick.py", "running": True}, out
    code, out, err = await doorlink("script/stop", *server)
    assert code == 0, err
    await eventually(lambda: said(rig, "tick.py stopped: script/stop"), timeout=10)

    for name in ("hello.py", "spin.py", "tick.py"):
        code, out, err = await doorlink("script/delete", json.dumps({"name": name}), *server)
        assert code == 0, err
    code, out, err = await doorlink("script/list", *server)
    assert json.loads(out)["body"] == []
    code, out, err = await doorlink("script/put", '{"name": "../x.py"}', "--file", str(hello), *server)
    assert code == 1 and "escapes the data root" in err, err
    assert "Traceback" not in rig.output()
