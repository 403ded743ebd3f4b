# The fingerprint driver and serial_posix under the MicroPython unix port
# (the runtime of the virtual board), against the emulated module's pty.
import json
import subprocess
import threading
from pathlib import Path

from agent.codecs import zfm
from host_tools import mpy
from host_tools.zfm_emulator import ReaderEmulator

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = ROOT / "tests" / "mp" / "fingerprint_check.py"


# What each fault of the MicroPython script's fault phase does to the line.
ARM = {
    "noise": lambda emu: emu.noise(40),                 # garbage before the reply
    "corrupt": lambda emu: emu.corrupt_next_checksum(),  # one bad checksum: a retry fixes it
    "silent": lambda emu: emu.silent(1),                 # one lost reply: deadline, retry
    "silent_long": lambda emu: emu.silent(3),            # every try lost: a clear error
    "reject": lambda emu: emu.reject_next(0x18),         # the module refuses (flash error)
}


def _person(emu, errors):
    """Enrol: finger 9 down, up once read (and seen gone), down again (and left there)."""
    try:
        n = emu.answered(zfm.IMG2TZ)
        emu.place(9)
        emu.wait_answered(zfm.IMG2TZ, n + 1, timeout=15)
        gone = emu.answered(zfm.GEN_IMG, zfm.NO_FINGER)
        emu.lift()
        emu.wait_answered(zfm.GEN_IMG, gone + 1, timeout=15, confirm=zfm.NO_FINGER)
        emu.place(9)
    except Exception as e:  # noqa: BLE001 - reported by the test thread
        errors.append(e)


def test_driver_under_micropython():
    with ReaderEmulator(library_size=300) as emu:
        emu.enroll(7)
        emu.place(7)
        proc = subprocess.Popen([mpy.tool("micropython"), str(SCRIPT), emu.path], cwd=ROOT,
                                env=mpy.micropython_env(ROOT), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        killer = threading.Timer(60, proc.kill)  # bounds every read below
        killer.start()
        lines, errors, person = [], [], None
        try:
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("@@arm "):
                    ARM[line.split()[1]](emu)
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                if line.startswith("@@enrol"):
                    emu.lift()
                    person = threading.Thread(target=_person, args=(emu, errors))
                    person.start()
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
            rc = proc.wait(5)
        finally:
            killer.cancel()
            proc.kill()
            if person:
                person.join(20)
        out = "".join(lines)
        assert rc == 0, out
        assert not errors, errors
        result = [json.loads(x[len("@@result "):]) for x in lines if x.startswith("@@result ")]
        assert result, out
        r = result[0]
        assert r["params"]["library_size"] == 300 and r["params"]["baud"] == 57600
        assert r["identify"][0] == 7 and r["identify"][1] > 0
        assert r["enrolled"] == 30
        assert r["after_enrol"][0] == 30
        assert r["templates"] == 2
        assert r["after_delete"] is None
        assert r["bad_page"][0] == zfm.BAD_PAGE and "0 to 299" in r["bad_page"][1]
        assert emu.library == {7: 7}
        f = r["faults"]
        for name in ("noise", "corrupt", "silent"):
            assert f[name] == ["ok", 1], (name, f[name])  # survived: the answer is right
        assert f["silent_long"][0] == "error" and "no answer" in f["silent_long"][2]
        assert f["reject"][:2] == ["error", 0x18] and f["reject"][2]
        assert f["after"] == 1  # and the line works again afterwards
        assert r["counters"].get("fp_retries", 0) >= 4
