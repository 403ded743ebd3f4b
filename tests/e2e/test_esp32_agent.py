# The whole agent (agent.main) on an ESP32 board file, under MicroPython on
# the ESP32 stand-ins (tests/mp/stubs): its relay pin watched from the
# process's first instant ($MACHINE_PIN_LOG), its Wi-Fi joined through the
# stand-in `network`, its cloud the real bench over loopback.
import asyncio
import json

from host_tools import mpy
from host_tools.paths import ROOT

from e2e_support import eventually

RELAY = 26
WIFI = {"ssid": "site-ap", "password": "correct-horse"}   # the stand-in access point's
STUBS = ROOT / "tests" / "mp" / "stubs"
STUBS_KB = 16   # the stand-in machine and network modules, loaded (about 13 KB)
# The shipped ESP32 door board's budget: the agent must run within it.
HEAP_KB = json.loads((ROOT / "boards" / "esp32-devkitc-door.json").read_text())["heap_kb"]


def _board(tmp_path):
    path = tmp_path / "esp32-door.json"
    path.write_text(json.dumps({
        "name": "esp32-door-test", "chip": "esp32", "runtimes": ["micropython"], "hal": "esp32",
        "heap_kb": HEAP_KB, "journal": {"path": str(tmp_path / "journal")},
        # Active low: the chip's output register is 0 after a reset, the unlock level here.
        "peripherals": [{"type": "door", "name": "front", "relay_pin": RELAY, "relay_active_high": False,
                         "sensor_pin": 27, "rex_pin": 14, "unlock_ms": 400}],
    }))
    return path


def _relay_levels(log_path):
    """Every level the relay pin was driven to, in order ("reset"/"wdt" lines too)."""
    if not log_path.exists():
        return []
    out = []
    for line in log_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and int(parts[1]) == RELAY:
            out.append(int(parts[2]))
        elif len(parts) == 1:
            out.append(parts[0])
    return out


async def test_esp32_agent_joins_wifi_registers_and_pulses_its_relay(rig, bench, admin, micropython, tmp_path,
                                                                     figure):
    pins = tmp_path / "pins.log"
    site = rig.write_site(wifi=WIFI)
    # Precompiled, as a board holds it, on the stand-ins - which take heap
    # that on a chip is the firmware's flash: the heap is the board's
    # budget plus their share.
    path = "%s:%s:.frozen" % (STUBS, mpy.build_deploy())
    agent = asyncio.create_task(micropython.run(
        "-m", "agent.main", "--board", _board(tmp_path), "--site", site, heap_kb=HEAP_KB + STUBS_KB, timeout=40,
        env={"MICROPYPATH": path, "MACHINE_PIN_LOG": str(pins)}))
    try:
        await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=30)
        before = _relay_levels(pins)
        assert before and set(before) == {1}, before   # locked from the first write, never a glimpse of 0
        result = await admin.command("unlock", {"duration_ms": 400})
        assert result["payload"]["ok"] is True
        await eventually(lambda: _relay_levels(pins)[len(before):] == [0, 1], timeout=5)
        await asyncio.sleep(1.2)   # the heap is sampled once a second
        status = (await admin.command("status", cmd_id="c3"))["payload"]["result"]
        figure("MicroPython agent on the esp32 hal, one door + Wi-Fi + json_ws: peak live heap %d bytes "
               "(the stand-ins' ~13 KB included) of a %d KiB budget"
               % (status["heap_peak"], status["heap_budget_kb"]))
        await admin.command("reboot", cmd_id="c2")
    finally:
        ran = await agent   # ends by the reboot, else killed at its timeout: never left running
        print("---- agent output ----\n" + ran.out)
    assert ran.code == 75   # hal.RESTART_EXIT: a unix process "resets" by exiting
    assert "joined 'site-ap'" in ran.out
    assert WIFI["password"] not in ran.out
