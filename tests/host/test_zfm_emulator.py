# The emulated fingerprint module must satisfy a third-party ZFM client, not
# only our own driver: `pyfingerprint` (pyserial, blocking) drives it here.
import json
import os
import signal
import socket
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


DOORLINK = [sys.executable, "-m", "host_tools.cli"]


def test_cli_reader():
    proc = subprocess.Popen(DOORLINK + ["emulate", "reader", "--json", "--library-size", "50"],
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
        proc.stdin.write("list\nbogus\nplace\nquit\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline()) == {"templates": {"4": 4}}
        assert "unknown command" in proc.stdout.readline()
        assert "needs a finger number" in proc.stdout.readline()
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()


def _control(address, *lines):
    """Send command lines to the emulator's control port; its answers."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        f = s.makefile("rw")
        answers = []
        for line in lines:
            f.write(line + "\n")
            f.flush()
            answers.append(f.readline().strip())
        return answers


def test_a_script_runs_the_reader_in_the_background(tmp_path):
    # What a technician's script does: start it with `&` (stdin at its end
    # at once), read where it is, drive it with a third-party library.
    out = tmp_path / "reader.json"
    script = (f"{' '.join(DOORLINK)} emulate reader --json > {out} 2>&1 &\n"
              "echo $!\n")
    pid = int(subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                             check=True).stdout.strip())
    try:
        deadline = time.monotonic() + 20
        while not out.read_text().strip():
            assert time.monotonic() < deadline, "the emulator printed nothing"
            time.sleep(0.05)
        info = json.loads(out.read_text().splitlines()[0])
        time.sleep(0.5)  # long past its stdin's end: it must still be there
        assert _alive(pid)
        assert _control(info["control"], "enroll 7", "place 7") == ["ok", "ok"]
        f = pyfingerprint.PyFingerprint(info["path"], 57600, 0xFFFFFFFF, 0)
        assert f.verifyPassword()
        f.readImage()
        f.convertImage(0x01)
        assert f.searchTemplate()[0] == 7
        assert _control(info["control"], "list", "quit") == ['{"templates": {"7": 7}}', "bye"]
        deadline = time.monotonic() + 5
        while _alive(pid):
            assert time.monotonic() < deadline, "quit did not stop it"
            time.sleep(0.05)
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid):
    # Not our child (bash started it): gone, or a zombie its new parent has
    # not reaped yet, which has ended all the same.
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
