# The emulated fingerprint module must satisfy a third-party ZFM client, not
# only our own driver: `pyfingerprint` (pyserial, blocking) drives it here.
import json
import subprocess
import sys
import threading
import time

import pytest

from agent.codecs import zfm
from host_tools.zfm_emulator import ReaderEmulator

pyfingerprint = pytest.importorskip("pyfingerprint.pyfingerprint")


@pytest.fixture
def emu():
    e = ReaderEmulator(library_size=300).start()
    yield e
    e.stop()


def _client(emu):
    return pyfingerprint.PyFingerprint(emu.path, 57600, 0xFFFFFFFF, 0)


def test_pyfingerprint_enrol_search_delete(emu):
    f = _client(emu)
    assert f.verifyPassword()
    assert f.getStorageCapacity() == 300
    assert f.getTemplateCount() == 0

    emu.place(8)
    assert f.readImage()
    f.convertImage(0x01)
    assert f.searchTemplate() == (-1, -1)  # not enrolled yet
    emu.lift()
    assert not f.readImage()
    emu.place(8)
    assert f.readImage()
    f.convertImage(0x02)
    assert f.compareCharacteristics() > 0
    f.createTemplate()
    assert f.storeTemplate() == 0  # first free page, found through ReadIndexTable
    assert f.storeTemplate(5) == 5
    assert f.getTemplateCount() == 2
    assert f.getTemplateIndex(0)[:6] == [True, False, False, False, False, True]

    emu.place(8)
    f.readImage()
    f.convertImage(0x01)
    page, score = f.searchTemplate()
    assert page == 0 and score > 0

    assert f.deleteTemplate(0)
    f.readImage()
    f.convertImage(0x01)
    assert f.searchTemplate()[0] == 5
    assert f.clearDatabase()
    assert f.getTemplateCount() == 0
    assert len(f.generateRandomNumber().to_bytes(4, "big")) == 4


def test_pyfingerprint_waits_for_a_finger(emu):
    # pyfingerprint callers loop on readImage() until a finger is down
    f = _client(emu)
    f.verifyPassword()
    threading.Timer(0.3, emu.place, (3,)).start()
    deadline = time.monotonic() + 5
    while not f.readImage():
        assert time.monotonic() < deadline
    f.convertImage(0x01)
    emu.lift()


def test_pyfingerprint_sees_module_errors(emu):
    f = _client(emu)
    emu.place_smudged()
    f.readImage()
    with pytest.raises(Exception, match="too messy"):
        f.convertImage(0x01)
    emu.place(1)
    f.readImage()
    f.convertImage(0x01)
    emu.place(2)
    f.readImage()
    f.convertImage(0x02)
    assert f.createTemplate() is False  # 0x0A: not the same finger
    assert pyfingerprint.PyFingerprint(emu.path, 57600, 0xFFFFFFFF, 99).verifyPassword() is False


def test_garbled_and_foreign_commands(emu):
    # talks raw bytes: a bad checksum gets 0x01, another address gets nothing
    import os
    import select
    import tty
    fd = os.open(emu.path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    try:
        bad = bytearray(zfm.command(zfm.TEMPLATE_NUM))
        bad[-1] ^= 0xFF
        os.write(fd, bytes(bad) + zfm.command(zfm.TEMPLATE_NUM, address=0x1234)
                 + zfm.command(0x77))
        p = zfm.Parser()
        got = []
        while len(got) < 2 and select.select([fd], [], [], 2)[0]:
            p.feed(os.read(fd, 256))
            got += list(p.packets())
        assert [pl for _, _, pl in got] == [b"\x01", b"\x01"]  # garbled, unknown command
        assert not select.select([fd], [], [], 0.2)[0]
    finally:
        os.close(fd)


CLI = ("import sys, argparse; from host_tools import zfm_emulator as z; "
       "p = argparse.ArgumentParser(); z.add_parser(p.add_subparsers(dest='cmd')); "
       "sys.exit(z.main(p.parse_args(sys.argv[1:])))")


def test_cli_reader():
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI,
         "emulate", "reader", "--json", "--library-size", "50"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        path = json.loads(proc.stdout.readline())["path"]
        proc.stdin.write("enroll 4\nplace 4\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok"
        assert proc.stdout.readline().strip() == "ok"
        f = pyfingerprint.PyFingerprint(path, 57600, 0xFFFFFFFF, 0)
        assert f.getStorageCapacity() == 50
        f.readImage()
        f.convertImage(0x01)
        assert f.searchTemplate()[0] == 4
        proc.stdin.write("list\nbogus\nquit\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"templates": {"4": 4}}
        assert "unknown command" in proc.stdout.readline()
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()
