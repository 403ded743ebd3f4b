"""`doorlink logs --device ID --server URL`, run as a technician runs it (the
real CLI in its own process), against an agent on the emulated board behind
a real bench: the device's lines arrive through the log_tail command, a
reboot is marked and the new boot read from its first line, a device not
online is waited for, and an XML terminal, whose protocol cannot carry the
command, is refused with the reason."""

import asyncio
import re
import sys

from test_logs import Follow

from host_tools.paths import ROOT
from host_tools.rig import REGISTERED

from e2e_support import DEVICE

BOOT_LINE = "INFO  agent: doorlink "    # the first line of every boot (agent/device.py)
REBOOTED = "-- device rebooted (boot "


async def _follow(bench_url, *options):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "host_tools.cli", "logs", "--device", DEVICE, "--server", bench_url,
        "--interval", "0.2", "--for", "40", *options, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return Follow(proc)


async def _boot_and_reboot(rig, admin, follow):
    first = await follow.seen(BOOT_LINE)
    assert (await admin.command("reboot", cmd_id="r1"))["payload"]["ok"]
    marker = await follow.seen(REBOOTED, after=first)
    second = await follow.seen(BOOT_LINE, after=marker)
    # Each line once: the old boot's before the marker, the new boot's from its first line on.
    assert sum(BOOT_LINE in line for line in follow.lines) == 2
    await follow.seen(REGISTERED, after=second)     # and it goes on



async def test_a_devices_lines_and_its_reboot_over_json_websocket(runtime, rig, bench, admin):
    await rig.start_agent(runtime=runtime)
    await rig.wait_registered()
    follow = await _follow(bench.url, "--timestamps")
    try:
        await _boot_and_reboot(rig, admin, follow)
    finally:
        code, err = await follow.end()
        print("---- doorlink logs ----\n" + "\n".join(follow.lines))   # for a failure's report
    assert code == 0, err
    assert "following %s" % DEVICE in err
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line) for line in follow.lines)   # --timestamps


async def test_lines_that_fell_out_of_the_ring_before_they_were_read_are_counted(rig, bench, admin):
    await rig.start_agent(runtime="cpython")
    await rig.wait_registered()
    follow = await _follow(bench.url, "--interval", "3")
    try:
        await follow.seen(BOOT_LINE)
        # Each command is a console line: 40 between two asks overflow the 32-line ring.
        for i in range(40):
            assert (await admin.command("get_time", cmd_id="t%d" % i))["payload"]["ok"]
        lost = await follow.seen(" lines lost (ring overflowed) --")
        await follow.seen("command get_time", after=lost)
        await asyncio.sleep(0.5)    # the rest of that answer
        n = int(follow.lines[lost].split()[1])
        shown = [line for line in follow.lines[lost:] if "command get_time" in line]
        # What is shown and what is counted lost make up all 40; nothing before the marker.
        assert n > 0 and n + len(shown) >= 40 and len(shown) <= 32
        assert not any("command get_time" in line for line in follow.lines[:lost])
    finally:
        code, err = await follow.end()
    assert code == 0, err


async def test_a_device_not_online_is_waited_for(rig, bench):
    follow = await _follow(bench.url)
    try:
        await follow.seen("-- device offline, waiting --")
        await rig.start_agent(runtime="cpython")
        back = await follow.seen("-- device back --")
        await follow.seen(BOOT_LINE, after=back)
    finally:
        code, err = await follow.end()
    assert code == 0, err
    assert follow.lines.count("-- device offline, waiting --") == 1   # one line for one outage


async def test_a_bench_that_goes_away_is_reconnected_to(rig, bench):
    await rig.start_agent(runtime="cpython")
    await rig.wait_registered()
    follow = await _follow(bench.url)
    try:
        await follow.seen(BOOT_LINE)
        await rig.stop_bench()
        gone = await follow.seen("-- bench %s gone, reconnecting --" % bench.url)
        await rig.restart_bench()
        back = await follow.seen("-- bench back --", after=gone)
        # What the device logged meanwhile (its own link to the bench went down too).
        await follow.seen("uplink: link down", after=back)
        await follow.seen(REGISTERED, after=back)
    finally:
        code, err = await follow.end()
    assert code == 0, err
    assert sum(BOOT_LINE in line for line in follow.lines) == 1    # the same boot: nothing shown twice


async def test_over_cloudsolution_http(rig, bench, admin):
    await rig.start_agent(rig.write_site(bench.http_url, uplink="http", heartbeat_s=0.5), runtime="micropython")
    await rig.wait_registered()
    follow = await _follow(bench.url)
    try:
        await _boot_and_reboot(rig, admin, follow)
    finally:
        code, err = await follow.end()
    assert code == 0, err


async def test_a_protocol_that_cannot_carry_it_is_refused_with_the_reason(rig, bench):
    await rig.start_agent(rig.write_site(uplink="xml_ws"), runtime="cpython")
    await rig.wait_registered()
    follow = await _follow(bench.url)
    code, err = await follow.end(interrupt=False)
    assert code == 1
    assert "cannot carry log_tail" in err and "XML" in err and "doorlink logs --port" in err
    assert "Traceback" not in err
