# The walking skeleton end to end, per runtime: bench cloud + emulated board
# + the real agent process.
from agent.config import load_board

from e2e_support import BOARD, DEVICE, eventually


async def test_device_registers_reports_unlocks_and_goes_offline(runtime, rig, bench, admin, figure):
    await rig.start_agent(runtime=runtime)
    online = await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online")
    assert online["device_id"] == DEVICE

    rows = await eventually(lambda: len(bench.store.telemetry_rows(DEVICE)) >= 2 and bench.store.telemetry_rows(DEVICE))
    assert set(rows[0]["payload"]) == {"temperature", "humidity"}

    emu = rig.session.emulator
    relay = load_board(str(BOARD))["peripherals"][0]["relay_pin"]
    assert emu.relay_energised() is False  # safe state at start: locked
    result = await admin.command("unlock", {"duration_ms": 1500})
    assert result["payload"]["ok"] is True
    await emu.wait_output(relay, 1, timeout=5)
    assert emu.relay_energised() is True
    await admin.next(lambda m: m.get("event_type") == "unlocked")
    await emu.wait_output(relay, 0, timeout=5)  # relocks by itself
    await admin.next(lambda m: m.get("event_type") == "locked")

    # A writable property: the default unlock pulse, then an unlock using it.
    changed = await admin.command("set", {"property": "front.unlock_ms", "value": 700}, cmd_id="c3")
    assert changed["payload"]["result"] == {"property": "front.unlock_ms", "value": 700}
    refused = await admin.command("set", {"property": "front.door", "value": "open"}, cmd_id="c4")
    assert refused["payload"]["ok"] is False and "read-only" in refused["payload"]["error"]
    assert (await admin.command("unlock", cmd_id="c5"))["payload"]["result"]["duration_ms"] == 700
    await emu.wait_output(relay, 0, timeout=5)

    emu.set_door_open(True)
    opened = await admin.next(lambda m: m.get("event_type") == "door_opened")
    assert opened["payload"]["door"] == "front"
    assert bench.store.event_rows(DEVICE, "door_opened")

    status = (await admin.command("status", cmd_id="c2"))["payload"]["result"]
    assert status["runtime"] == runtime
    if runtime == "micropython":
        budget = status["heap_budget_kb"] * 1024
        figure("MicroPython agent, emulated board: peak live heap %d bytes of a %d byte budget (-X heapsize=%dk)"
               % (status["heap_peak"], budget, status["heap_budget_kb"]))
        print("MicroPython peak live heap: %d bytes of a %d byte budget (-X heapsize=%dk)"
              % (status["heap_peak"], budget, status["heap_budget_kb"]))
        assert 0 < status["heap_peak"] < budget

    await rig.stop_agent()
    off = await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "offline")
    assert off["device_id"] == DEVICE
