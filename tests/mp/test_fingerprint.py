# The fingerprint driver and serial_posix under the MicroPython unix port
# (the runtime of the virtual board), against the pty of `doorlink emulate
# reader` (the `reader` fixture). The test drives the simulated finger and
# the line faults itself, over the emulator's control port.
import asyncio

from agent import log
from agent.codecs import zfm
from agent.hal.serial_posix import open_port
from agent.peripherals.fingerprint import Fingerprint, FingerprintError

from mp_support import Control


async def _fails(coro):
    try:
        await coro
    except FingerprintError as e:
        return e
    raise AssertionError("no FingerprintError")


async def _person(ctl):
    """Enrol: finger 9 down, up once read (and seen gone), down again (and left there)."""
    n = await ctl.answered(zfm.IMG2TZ)
    await ctl.send("place 9")
    await ctl.wait_answered(zfm.IMG2TZ, n + 1)
    gone = await ctl.answered(zfm.GEN_IMG, zfm.NO_FINGER)
    await ctl.send("lift")
    await ctl.wait_answered(zfm.GEN_IMG, gone + 1, confirm=zfm.NO_FINGER)
    await ctl.send("place 9")


async def _driver(reader):
    """(control port, port, driver) on the emulated module, finger 7 enrolled."""
    ctl = await Control.open(reader["control"])
    await ctl.send("enroll 7")
    port = open_port(reader["path"], 57600)
    fp = Fingerprint(port, timeout=1.0)
    await fp.verify_password()
    return ctl, port, fp


async def test_identify_enrol_delete(reader):
    ctl, port, fp = await _driver(reader)
    try:
        params = await fp.read_sys_params()
        assert params["library_size"] == 300 and params["baud"] == 57600
        await ctl.send("place 7")
        hit = await fp.identify()
        assert hit[0] == 7 and hit[1] > 0
        await ctl.send("lift")
        person = asyncio.create_task(_person(ctl))
        assert await fp.enrol(30, wait_s=10, poll_s=0.05) == 30
        await asyncio.wait_for(person, 15)  # its own failure, if any, fails the test here
        assert (await fp.identify())[0] == 30
        assert await fp.template_count() == 2
        await fp.delete(30)
        assert await fp.identify() is None
        e = await _fails(fp.enrol(5000, wait_s=1))
        assert e.code == zfm.BAD_PAGE and "0 to 299" in str(e), (e.code, str(e))
        assert await ctl.send("list") == '{"templates": {"7": 7}}'
    finally:
        port.close()
        await ctl.close()


async def test_line_faults_are_survived_or_reported(reader):
    ctl, port, fp = await _driver(reader)
    try:
        # garbage before the reply, one bad checksum, one lost reply: retried
        for fault in ("noise 40", "corrupt", "silent 1"):
            await ctl.send(fault)
            assert await fp.template_count() == 1, fault  # survived: the answer is right
        await ctl.send("silent 3")  # every try lost: a clear error
        assert "no answer" in str(await _fails(fp.template_count()))
        await ctl.send("reject 0x18")  # the module refuses (flash error)
        e = await _fails(fp.template_count())
        assert e.code == 0x18 and str(e)
        assert await fp.template_count() == 1  # and the line works again afterwards
        assert log.counters.get("fp_retries", 0) >= 4
        assert await ctl.send("list") == '{"templates": {"7": 7}}'
    finally:
        port.close()
        await ctl.close()
