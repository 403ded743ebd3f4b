# The agent's fingerprint driver (CPython) over a real pty, against the
# emulated ZFM module: the same bytes a module on /dev/serial0 would see.
import asyncio
import time

import pytest

from agent import config, log
from agent.codecs import zfm
from agent.hal.serial_posix import open_port
from agent.peripherals.fingerprint import (
    Fingerprint,
    FingerprintError,
    FingerprintReader,
)
from agent.thing import Thing
from host_tools.zfm_emulator import ReaderEmulator


@pytest.fixture
def emu():
    e = ReaderEmulator(library_size=300).start()
    yield e
    e.stop()


@pytest.fixture
async def fp(emu):
    port = open_port(emu.path, 57600)
    f = Fingerprint(port, timeout=0.5)
    await f.verify_password()
    await f.read_sys_params()
    yield f
    port.close()


def counter(name):
    return log.counters.get(name, 0)


async def _answered(emu, code, count, confirm=None, timeout=5):
    await asyncio.to_thread(emu.wait_answered, code, count, timeout, confirm)


async def _finger_twice(emu, finger):
    """A person enrolling: finger down, up once the module has read it (and
    seen it go), down again."""
    n = emu.answered(zfm.IMG2TZ)
    emu.place(finger)
    await _answered(emu, zfm.IMG2TZ, n + 1)
    gone = emu.answered(zfm.GEN_IMG, zfm.NO_FINGER)
    emu.lift()
    await _answered(emu, zfm.GEN_IMG, gone + 1, zfm.NO_FINGER)
    emu.place(finger)
    await _answered(emu, zfm.IMG2TZ, n + 2)
    emu.lift()


async def test_sys_params(fp, emu):
    emu.enroll(4)
    p = await fp.read_sys_params()
    assert p == {"status": 0, "system_id": 9, "library_size": 300, "security_level": 3,
                 "address": 0xFFFFFFFF, "packet_size": 128, "baud": 57600}
    assert await fp.template_count() == 1


async def test_identify_known_finger(fp, emu):
    emu.enroll(7)
    emu.place(7)
    page, score = await fp.identify()
    assert page == 7 and 0 < score < 300


async def test_no_finger_and_unknown_finger(fp, emu):
    emu.enroll(7)
    assert await fp.identify() is None  # nothing on the sensor
    before = counter("fp_unknown")
    emu.place_unknown()
    assert await fp.identify() is None
    assert counter("fp_unknown") == before + 1


async def test_smudged_finger_raises_capture_error(fp, emu):
    emu.place_smudged()
    e = await _raises(fp.identify())
    assert e.code == zfm.TOO_MESSY and "messy" in str(e)
    emu.place(1)
    emu.enroll(1)
    assert (await fp.identify())[0] == 1  # next capture is fine


async def test_enrol_then_identify_then_delete(fp, emu):
    person = asyncio.create_task(_finger_twice(emu, 42))
    assert await fp.enrol(12, wait_s=5, poll_s=0.05) == 12
    await person
    assert emu.library == {12: 42}
    emu.place(42)
    assert (await fp.identify())[0] == 12
    await fp.delete(12)
    assert emu.library == {}
    assert await fp.identify() is None


async def test_enrol_two_different_fingers_is_refused(fp, emu):
    async def swap():
        emu.place(1)
        await _answered(emu, zfm.IMG2TZ, 1)
        gone = emu.answered(zfm.GEN_IMG, zfm.NO_FINGER)
        emu.lift()
        await _answered(emu, zfm.GEN_IMG, gone + 1, zfm.NO_FINGER)
        emu.place(2)
    person = asyncio.create_task(swap())
    e = await _raises(fp.enrol(3, wait_s=5, poll_s=0.05))
    await person
    assert e.code == zfm.ENROL_MISMATCH
    assert emu.library == {}


async def test_enrol_bad_page(fp):
    e = await _raises(fp.enrol(300, wait_s=1, poll_s=0.05))
    assert e.code == zfm.BAD_PAGE and "0 to 299" in str(e)


async def test_line_noise_between_packets(fp, emu):
    emu.enroll(3)
    emu.place(3)
    for _ in range(3):
        emu.noise(40)
        assert (await fp.identify())[0] == 3


async def test_corrupted_checksum_is_retried(fp, emu):
    before = counter("fp_retries")
    emu.corrupt_next_checksum()
    assert await fp.template_count() == 0
    assert counter("fp_retries") == before + 1


async def test_silent_module_gives_clear_error_then_recovers(fp, emu):
    emu.silent(3)  # the first try and both retries
    t0 = time.monotonic()
    e = await _raises(fp.template_count())
    assert time.monotonic() - t0 >= 1.4
    assert str(e) == ("no answer from the fingerprint module within 0.5s "
                      "(check wiring, baud rate 57600, power)")
    assert e.code is None
    assert await fp.template_count() == 0


async def test_silent_once_is_retried(fp, emu):
    emu.silent(1)
    before = counter("fp_retries")
    assert await fp.template_count() == 0
    assert counter("fp_retries") == before + 1


async def test_default_deadline_message(emu):
    port = open_port(emu.path)
    f = Fingerprint(port, retries=0)
    emu.silent(1)
    e = await _raises(f.template_count())
    assert "within 2.0s (check wiring, baud rate 57600, power)" in str(e)
    port.close()


async def test_module_rejects_a_command(fp, emu):
    emu.reject_next(zfm.FLASH_ERROR)
    e = await _raises(fp.empty())
    assert e.code == 0x18 and str(e) == zfm.CONFIRM_TEXT[0x18]


async def test_wrong_password(emu):
    port = open_port(emu.path)
    f = Fingerprint(port, password=1234, timeout=0.5)
    e = await _raises(f.verify_password())
    assert e.code == zfm.WRONG_PASSWORD
    port.close()


# -- the peripheral -------------------------------------------------------------
async def _wait(pred, timeout=5):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_reader_peripheral(emu):
    thing = Thing("t")
    events = []
    thing.listen(lambda kind, name, value: kind == "event" and events.append((name, value)))
    reader = FingerprintReader(thing, config.peripheral("fingerprint", {"port": emu.path, "poll_ms": 30}))
    task = asyncio.create_task(reader.run())
    try:
        await _wait(lambda: thing.get("fingerprint") == "ready")
        emu.enroll(5)
        emu.place(5)
        await _wait(lambda: events)
        await asyncio.sleep(0.2)  # the finger rests: still one punch
        assert events == [("finger_identified", {"user": "5", "score": events[0][1]["score"]})]
        emu.lift()
        await asyncio.sleep(0.1)
        punches = []
        reader.on_punch = lambda user, score: punches.append(user)
        emu.place(5)
        await _wait(lambda: punches)
        emu.lift()
        await asyncio.sleep(0.1)  # the loop sees the finger go

        # a smudge or an unknown finger is logged, not punched, and the loop goes on
        errors = counter("fp_errors")
        emu.place_smudged()
        await _wait(lambda: counter("fp_errors") > errors)
        emu.lift()
        await asyncio.sleep(0.1)
        unknown = counter("fp_unknown")
        emu.place_unknown()
        await _wait(lambda: counter("fp_unknown") > unknown)
        emu.lift()
        assert punches == [5]

        # the person puts the finger down once the reader asks for it
        enrol = asyncio.create_task(thing.call("enrol", {"user": 20}))
        await _wait(lambda: thing.get("fingerprint") == "enrolling")
        await _finger_twice(emu, 77)
        assert await enrol == {"user": 20}
        assert thing.get("fingerprint") == "ready"
        assert ("EnrollFP", {"user": "20"}) in events
        assert emu.library[20] == 77
        status = await thing.call("fp_status", {})
        assert status["templates"] == 2 and status["library_size"] == 300
        assert await thing.call("delete_user", {"user": 20}) == {"user": 20}
        assert ("DeleteFP", {"user": "20"}) in events
        assert 20 not in emu.library

        from agent.errors import CommandError
        with pytest.raises(CommandError, match="integer"):
            await thing.call("enrol", {"user": "x"})

        # a dead line: counted and logged, the loop survives and resumes
        errors = counter("fp_errors")
        emu.silent(3)
        await _wait(lambda: counter("fp_errors") > errors, timeout=10)
        assert not task.done()
        await _wait(lambda: thing.get("fingerprint") == "ready", timeout=10)
        emu.place(5)
        # After an error the reader backs off (1 s, doubling) before polling again.
        await _wait(lambda: len(punches) == 2, timeout=10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if reader.fp is not None:
            reader.fp.port.close()


async def _raises(coro):
    try:
        await coro
    except FingerprintError as e:
        return e
    raise AssertionError("FingerprintError not raised")
