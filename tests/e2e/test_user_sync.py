# Users synced from the cloud over each of the three protocols survive a
# reboot, per runtime: an admin gives the door board its users in the
# protocol's own operations (JSON users_sync; XML SetUserData; CloudSolution
# setuserinfo riding on replies), reboots it through the protocol (the
# `reboot` command, XML LockControl 5), and after the restart the device's
# own answers (user_get: GetUserData, getuserinfo) still hold every user -
# and never a PIN.
import pytest

from host_tools.paths import ROOT

from e2e_support import DEVICE, eventually
from secret_leaks import leaks


def _wired():
    """The access controller registers the user commands once device.py
    builds it (docs/door-controller.md section 5)."""
    controller = ROOT / "agent" / "access" / "controller.py"
    return controller.exists() and "access.controller" in (ROOT / "agent" / "device.py").read_text()


pytestmark = pytest.mark.skipif(
    not _wired(), reason="needs the access controller (agent/access/controller.py) built by agent/device.py: "
                         "without it no agent registers user_set / user_get, whatever the protocol")

ANN = {"id": "1001", "name": "Ann", "cards": [12345678]}
BO = {"id": "1002", "name": "Bo", "cards": [87654321]}
PIN = "4711"


async def _online(rig, admin, uplink, runtime):
    site = {"heartbeat_s": 0.5} if uplink == "http" else {}
    rig.uplink = uplink
    await rig.start_agent(rig.write_site(uplink=uplink, **site), runtime=runtime)
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)


async def _ok(admin, name, payload, cmd_id):
    got = (await admin.command(name, payload, cmd_id=cmd_id, device=DEVICE))["payload"]
    assert got["ok"] is True, got
    return got.get("result") or {}


async def _sync(admin, uplink):
    """Ann (card and PIN) and Bo (card, disabled), in the protocol's way."""
    if uplink == "json_ws":
        await _ok(admin, "users_sync", {"phase": "begin"}, "s1")
        await _ok(admin, "users_sync", {"phase": "page", "users": [dict(ANN, pin=PIN), dict(BO, enabled=False)]},
                  "s2")
        await _ok(admin, "users_sync", {"phase": "commit"}, "s3")
        return
    await _ok(admin, "users_clear", {}, "s0")
    if uplink == "xml_ws":   # SetUserData carries a whole user
        await _ok(admin, "user_set", {"user": dict(ANN, pin=PIN)}, "s1")
        await _ok(admin, "user_set", {"user": dict(BO, enabled=False)}, "s2")
        return
    # setuserinfo carries one credential at a time: the device merges them
    await _ok(admin, "user_set", {"user": ANN}, "s1")
    await _ok(admin, "user_set", {"user": {"id": ANN["id"], "pin": PIN}}, "s2")
    await _ok(admin, "user_set", {"user": BO}, "s3")
    await _ok(admin, "user_enable", {"id": BO["id"], "enabled": False}, "s4")


async def _reboot(rig, admin):
    boots = rig.output(None).count("registered as")
    await _ok(admin, "reboot", {}, "r1")
    await eventually(lambda: rig.session.restarts == 1, timeout=15)
    await eventually(lambda: rig.output(None).count("registered as") > boots, timeout=20)
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=20)


@pytest.mark.parametrize("uplink", ["json_ws", "xml_ws", "http"])
async def test_users_synced_over_each_protocol_survive_a_reboot(runtime, rig, bench, admin, uplink):
    await _online(rig, admin, uplink, runtime)
    await _sync(admin, uplink)
    await _reboot(rig, admin)
    ask = {"backupnum": 11} if uplink == "http" else {}   # getuserinfo: the card
    for want, cmd_id in ((ANN, "g1"), (BO, "g2")):
        got = (await _ok(admin, "user_get", dict(ask, id=want["id"]), cmd_id))["user"]
        assert (got["id"], got["name"], got["cards"]) == (want["id"], want["name"], want["cards"]), got
        assert got["enabled"] is (want is ANN)
    if uplink == "json_ws":
        assert (await _ok(admin, "user_get", {"id": ANN["id"]}, "g3"))["user"]["pin"] is True
    missing = (await admin.command("user_get", dict(ask, id="9999"), cmd_id="g4"))["payload"]
    assert missing["ok"] is False
    # the PIN went to the device and nowhere else: not in an answer, the bench's store or a log line
    rows = bench.store.event_rows(DEVICE) + bench.store.command_rows(DEVICE)
    assert not leaks(PIN, rows, rig.output(None)), rows
