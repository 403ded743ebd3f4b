# The emulated fingerprint module must satisfy a third-party ZFM client, not
# only our own driver: `pyfingerprint` (pyserial, blocking) drives it here.
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import tty

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
    fd = _raw_line(emu.path)
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


def _raw_line(path):
    """The module's line, opened as a raw tty: bytes as they are."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def _reply_to(fd, code, timeout=2):
    """Send command `code`; (the raw bytes back, the packets in them, bad
    checksums seen) once a packet or a bad checksum arrived, or `timeout`."""
    os.write(fd, zfm.command(code))
    parser, raw, packets = zfm.Parser(), b"", []
    deadline = time.monotonic() + timeout
    while not packets and not parser.bad_checksum:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        chunk = os.read(fd, 256)
        raw += chunk
        parser.feed(chunk)
        packets += [payload for _, _, payload in parser.packets()]
    return raw, packets, parser.bad_checksum


def test_line_faults_and_answer_counts_through_the_control_port(reader):
    fd = _raw_line(reader.path)
    try:
        ok = zfm.ack(zfm.OK, zfm.u16(0))   # TemplateNum: an empty library
        assert _reply_to(fd, zfm.TEMPLATE_NUM) == (ok, [ok[9:-2]], 0)
        assert _control(reader.control, "noise 5") == ["ok"]
        raw, packets, _ = _reply_to(fd, zfm.TEMPLATE_NUM)
        assert len(raw) == len(ok) + 5 and raw.endswith(ok) and packets == [ok[9:-2]]
        assert _control(reader.control, "corrupt") == ["ok"]
        raw, packets, bad = _reply_to(fd, zfm.TEMPLATE_NUM)
        assert (raw[:-1], packets, bad) == (ok[:-1], [], 1) and raw[-1] != ok[-1]
        assert _control(reader.control, "silent 2") == ["ok"]
        assert _reply_to(fd, zfm.TEMPLATE_NUM, timeout=0.3) == (b"", [], 0)
        assert _reply_to(fd, zfm.TEMPLATE_NUM, timeout=0.3) == (b"", [], 0)
        assert _reply_to(fd, zfm.TEMPLATE_NUM)[0] == ok
        assert _control(reader.control, "reject 0x18") == ["ok"]
        assert _reply_to(fd, zfm.TEMPLATE_NUM)[1] == [b"\x18"]
        assert _reply_to(fd, zfm.TEMPLATE_NUM)[0] == ok  # once only
        # 8 sent, 2 ignored; codes in decimal or hex, a confirmation to match
        assert _control(reader.control, "answered 0x1d", "answered 29", "answered 0x1D 0x18",
                        "answered 0x1d 0", "answered 0x01") == ["6", "6", "1", "5", "0"]
    finally:
        os.close(fd)


def test_control_port_refuses_bad_arguments_and_lists_every_command(reader):
    answers = _control(reader.control, "reject 256", "reject", "noise x", "silent 1 2", "answered",
                       "answered 0x1d 0x100", "corrupt now", "help")
    assert answers[:7] == [
        "error: reject needs a confirmation code (0 to 0xff), e.g. 'reject 0x18'",
        "error: reject needs a confirmation code (0 to 0xff), e.g. 'reject 0x18'",
        "error: noise needs a count from 0 to 4096, e.g. 'noise 2'",
        "error: silent needs a count from 0 to 4096, e.g. 'silent 2'",
        "error: answered needs a command code (0 to 0xff), then optionally a confirmation code, "
        "e.g. 'answered 0x01'",
        "error: answered needs a command code (0 to 0xff), then optionally a confirmation code, "
        "e.g. 'answered 0x01'",
        "error: corrupt takes no argument",
    ]
    for usage in ("place N", "noise N", "corrupt", "silent N", "reject CODE", "answered CODE [CONFIRM]", "quit"):
        assert usage in answers[7], usage


def test_the_control_port_stays_on_loopback_unless_asked():
    res = subprocess.run(DOORLINK + ["emulate", "reader", "--control", "0.0.0.0:0"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "not a loopback address" in res.stderr and "--allow-nonlocal" in res.stderr
