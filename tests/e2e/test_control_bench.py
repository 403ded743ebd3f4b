"""The agent's management channel against the bench's own control server
(host_tools/bench/control.py, built beside it from the same wire format):
the bench asks app/state as the device connects, and a request signed
by the bench with the device's control key is taken by the device, whose
replies, signed for each request, the bench takes as the device's."""

from host_tools.bench.app import CONTROL

from e2e_support import DEVICE, TOKEN, eventually

KEY = "bench-signed-control-key-01"


async def test_the_bench_drives_a_signed_device(runtime, rig, bench):
    bench.store.add_device(DEVICE, TOKEN, control_key=KEY)
    control = bench.app[CONTROL]
    url = bench.url.rsplit("/", 1)[0] + "/control"
    await rig.start_agent(site=rig.write_site(control={"url": url, "key": KEY}), runtime=runtime)
    await eventually(lambda: DEVICE in control.online(), timeout=20)
    state = await control.request(DEVICE, "app/state", timeout=10)
    assert state["error"] == "" and state["body"]["system"]["sn"] == DEVICE
    reply = await control.request(DEVICE, "app/register", {"code": "123456789012"}, timeout=10)
    assert reply["error"] == ""
    assert (await control.request(DEVICE, "app/state"))["body"]["app"]["license"] == "123456789012"
    # Nothing was refused: every request the bench sent was signed right,
    # and every reply the device sent was signed for its request.
    assert "request refused" not in rig.output()
    assert control.hub.errors["control_unsigned_reply"] == 0
