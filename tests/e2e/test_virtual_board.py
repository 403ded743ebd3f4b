# The virtual board (host_tools/virtual_board.py + host_tools/mp/board_firmware.py)
# driven by the real mpremote CLI over its pty, as a technician drives a
# USB-attached ESP32: exec, fs, soft-reset, run, reset, Ctrl-C; boot.py /
# main.py semantics; its flash a LittleFS image the host reads and writes;
# its heap budget; and the agent booting from its flash onto a bench.
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_tools import mpy
from host_tools.paths import BOARDS, ROOT
from host_tools.virtual_board import ROM_HEAP_KB, make_image, open_image

from e2e_support import DEVICE, eventually

MPREMOTE = str(Path(sys.executable).parent / "mpremote")


async def mpremote(port, *args, timeout=30, check=True):
    """Run the real mpremote against `port`; -> its output (stdout and
    stderr). The board runs in this loop: never block it."""
    proc = await asyncio.create_subprocess_exec(MPREMOTE, "connect", port, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"mpremote {' '.join(args)} did not finish in {timeout} s") from None
    text = out.decode("utf-8", "replace")
    if check:
        assert proc.returncode == 0, f"mpremote {' '.join(args)} failed ({proc.returncode}):\n{text}"
    return text


def type_keys(port, data):
    """Bytes typed on a terminal attached to the board's port."""
    fd = os.open(port, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class Console:
    """Everything the board printed, to wait on."""

    def __init__(self):
        self.data = bytearray()

    def __call__(self, chunk):
        self.data.extend(chunk)

    def mark(self):
        return len(self.data)

    async def wait_for(self, needle, since=0, timeout=15):
        needle = needle.encode() if isinstance(needle, str) else needle
        return await eventually(lambda: needle in self.data[since:], timeout=timeout, every=0.02)

    def text(self, since=0):
        return bytes(self.data[since:]).decode("utf-8", "replace")


async def test_mpremote_exec_fs_and_soft_reset(virtual_board, tmp_path, figure):
    console = Console()
    t0 = time.monotonic()
    vb = await virtual_board(on_console=console)
    await console.wait_for(">>> ")
    figure(f"virtual board: start to friendly REPL {1000 * (time.monotonic() - t0):.0f} ms")
    assert vb.port.startswith("/dev/pts/") and vb.info()["port"] == vb.port

    assert (await mpremote(vb.port, "exec", "print(1+1)")).strip() == "2"

    local = tmp_path / "x.py"
    local.write_text("print('hello from x')\n" + "# padding\n" * 50)
    await mpremote(vb.port, "fs", "mkdir", ":lib")
    await mpremote(vb.port, "fs", "cp", str(local), ":lib/x.py")
    back = tmp_path / "back.py"
    await mpremote(vb.port, "fs", "cp", ":lib/x.py", str(back))
    assert back.read_bytes() == local.read_bytes()
    # `fs cat` prints the text: the console's \r\n, as a board's print() sends it
    assert (await mpremote(vb.port, "fs", "cat", ":lib/x.py")).replace("\r\n", "\n") == local.read_text()
    assert "x.py" in await mpremote(vb.port, "fs", "ls", ":lib")
    # /lib is on the board's sys.path, as on an ESP32.
    assert "hello from x" in await mpremote(vb.port, "exec", "import x")

    # A soft reset restarts the interpreter: a global set before is gone.
    resets = vb.resets
    await mpremote(vb.port, "exec", "marker = 42", "+", "exec", "print(marker)")
    out = await mpremote(vb.port, "exec", "marker = 42", "+", "soft-reset", "+", "exec",
                         "print('marker' in globals())")
    assert out.strip() == "False"
    assert vb.resets > resets

    # A host file run on the board; an error comes back as a traceback.
    script = tmp_path / "script.py"
    script.write_text("import sys\nprint('ran on', sys.platform, 6 * 7)\n")
    assert "ran on linux 42" in await mpremote(vb.port, "run", str(script))
    out = await mpremote(vb.port, "exec", "1/0", check=False)
    assert "ZeroDivisionError" in out and "board_firmware" not in out

    # Throughput of a plain copy, for the README.
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 128)   # 32 KB
    t = time.monotonic()
    await mpremote(vb.port, "fs", "cp", str(big), ":big.bin")
    figure(f"virtual board: mpremote fs cp {32 / (time.monotonic() - t):.1f} KB/s (32 KB file)")
    assert (await mpremote(vb.port, "exec", "import os; print(os.stat('big.bin')[6])")).strip() == str(32 * 1024)


LOOPING_MAIN = b"import time\nprint('main ran')\nwhile True:\n    time.sleep(1)\n"


async def test_boot_and_main_like_a_board_and_ctrl_c_interrupts_main(virtual_board, tmp_path):
    # Files put in the image on the host (littlefs-python) before power-on.
    image = make_image(tmp_path / "flash.img", 512, {"boot.py": b"print('boot ran')\n", "main.py": LOOPING_MAIN,
                                                     "data/note.txt": b"from the host"})
    console = Console()
    vb = await virtual_board(image=image, on_console=console)
    await console.wait_for("main ran")
    assert console.text().index("boot ran") < console.text().index("main ran")

    # main.py loops forever: mpremote's Ctrl-C interrupts it and still gets
    # its raw REPL; the soft reset into the raw REPL runs boot.py, not main.py.
    since = console.mark()
    assert (await mpremote(vb.port, "exec", "print(open('data/note.txt').read())")).strip() == "from the host"
    after = console.text(since)
    assert "KeyboardInterrupt" in after
    assert "boot ran" in after and "main ran" not in after

    # A hard reset (mpremote reset: machine.reset()) runs main.py again; so
    # does Ctrl-D in the friendly REPL.
    since = console.mark()
    await mpremote(vb.port, "reset")
    await console.wait_for("main ran", since)
    await mpremote(vb.port, "exec", "open('main.py', 'w').write(\"print('second main')\")")
    resets = vb.resets
    since = console.mark()
    type_keys(vb.port, b"\r\x02")       # mpremote left the board in its friendly REPL; Ctrl-B to be sure
    await console.wait_for(">>> ", since)
    type_keys(vb.port, b"\x04")          # Ctrl-D: soft reset
    await console.wait_for("second main", since)
    assert "MPY: soft reboot" in console.text(since)
    assert vb.resets == resets + 1
    assert vb.crashes == 0


async def test_flash_image_round_trips_with_littlefs_python(virtual_board, tmp_path):
    console = Console()
    vb = await virtual_board(on_console=console)   # no image yet: made with littlefs-python
    local = tmp_path / "cfg.json"
    local.write_bytes(b'{"written": "by mpremote"}')
    await mpremote(vb.port, "fs", "mkdir", ":etc", "+", "fs", "cp", str(local), ":etc/cfg.json")
    fs = open_image(vb.image)
    with fs.open("etc/cfg.json", "rb") as f:
        assert f.read() == local.read_bytes()
    assert vb.info()["flash_kb"] == 2048
    assert (await mpremote(vb.port, "exec", "import os; s = os.statvfs('/'); print(s[0] * s[2])")).strip() \
        == str(2048 * 1024)


async def test_heap_budget_holds_and_the_board_survives(virtual_board, figure):
    vb = await virtual_board(heap_kb=64)
    out = await mpremote(vb.port, "exec", "b = bytearray(72 * 1024)", check=False)
    assert "MemoryError" in out
    # The budget is the program's: the ROM's own share is not taken from it.
    assert (await mpremote(vb.port, "exec", "b = bytearray(56 * 1024); print(len(b))")).strip() == "57344"
    used = await mpremote(vb.port, "exec", "import gc; gc.collect(); print(gc.mem_alloc())")
    figure(f"virtual board: the ROM's heap at the REPL prompt {int(used) / 1024:.1f} KB "
           f"(the interpreter gets {ROM_HEAP_KB} KB on top of the board's heap_kb)")
    assert vb.crashes == 0


async def test_an_interpreter_that_dies_resets_the_board(virtual_board):
    console = Console()
    vb = await virtual_board(on_console=console)
    await console.wait_for(">>> ")
    # The interpreter killed under the board (as a fatal error would end it).
    await mpremote(vb.port, "exec", "--no-follow", "import os; os.system('kill -9 $PPID')")
    await console.wait_for("interpreter died (signal 9), resetting")
    assert (await mpremote(vb.port, "exec", "print('back')")).strip() == "back"
    assert vb.crashes == 1


async def test_the_agent_boots_from_flash_and_comes_online(virtual_board, rig, bench, admin, tmp_path, figure):
    console = Console()
    vb = await virtual_board(on_console=console)
    board = json.loads((BOARDS / "virtual-esp32.json").read_text())
    board["emulator"]["port"] = vb.emulator.port   # where this test's pin emulator listens
    (tmp_path / "board.json").write_text(json.dumps(board))
    (tmp_path / "main.py").write_text("import agent.main\n"
                                      "agent.main.main(['--board', '/board.json', '--site', '/site.json'])\n")
    site = rig.write_site()
    # What a technician copies with mpremote: the precompiled agent, the
    # board and site files, a main.py.
    t = time.monotonic()
    await mpremote(vb.port, "fs", "cp", "-r", str(mpy.build_deploy() / "agent"), ":", "+",
                   "fs", "cp", str(tmp_path / "board.json"), ":board.json", "+",
                   "fs", "cp", str(site), ":site.json", "+",
                   "fs", "cp", str(tmp_path / "main.py"), ":main.py", timeout=120)
    copied = sum(f.stat().st_size for f in (mpy.build_deploy() / "agent").rglob("*.mpy"))
    figure(f"virtual board: agent copied with mpremote fs cp -r, {copied // 1024} KB in "
           f"{time.monotonic() - t:.1f} s")
    since = console.mark()
    t = time.monotonic()
    await mpremote(vb.port, "reset")
    await console.wait_for(f"device {DEVICE}", since, timeout=30)
    assert "doorlink " in console.text(since) and "board virtual-esp32" in console.text(since)
    await admin.next(lambda m: m.get("type") == "device_status" and m["status"] == "online", timeout=30)
    figure(f"virtual board: agent reset to online {time.monotonic() - t:.1f} s (booted from its LittleFS flash)")

    # Once the agent has read the door (its debounce passed), the exit
    # button on the board's emulated pins opens it and reaches the cloud.
    async def door_closed():
        status = await admin.command("status", cmd_id="s")
        return status["payload"]["result"]["properties"].get("front.door") == "closed"
    for _ in range(100):
        if await door_closed():
            break
    vb.emulator.press_rex()
    await vb.emulator.wait_output(board["peripherals"][0]["relay_pin"], 1, timeout=10)
    await eventually(lambda: bench.store.event_rows(DEVICE, "rex"), timeout=15)
    await vb.stop()   # power off: the journal stays on the flash

    # The image, read on the host: `doorlink journal` decodes the agent's journal in it.
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "host_tools.cli", "journal", str(vb.image),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert lines[0]["folder"].endswith(DEVICE) and len(lines) > 1


def _doorlink(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def test_doorlink_emulate_board_detached_behind_a_link(tmp_path):
    image, link = tmp_path / "flash.img", tmp_path / "ttyUSB0"
    res = _doorlink("emulate", "board", "virtual-esp32", "--image", str(image), "--link", str(link),
                    "--heap-kb", "128", "--emulator-port", "0", "--detach")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    try:
        assert info["port"] == str(link) and os.path.realpath(link).startswith("/dev/pts/")
        assert info["image"] == str(image) and image.stat().st_size == 2048 * 1024
        assert info["heap_kb"] == 128 and info["emulator"].startswith("127.0.0.1:")
        heap = "import gc; print(gc.mem_free() + gc.mem_alloc())"
        out = subprocess.run([MPREMOTE, "connect", str(link), "exec", heap], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert 120 * 1024 < int(out.stdout) - ROM_HEAP_KB * 1024 <= 128 * 1024
    finally:
        os.kill(info["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 10
    while link.is_symlink() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not link.is_symlink()   # stopped cleanly: it took its link away


def test_doorlink_emulate_board_refuses_what_it_cannot_run(tmp_path):
    res = _doorlink("emulate", "board", "esp32-devkitc-door", "--image", str(tmp_path / "f.img"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "hal" in res.stderr and "virtual-esp32" in res.stderr
    taken = tmp_path / "not-a-link"
    taken.write_text("keep me")
    res = _doorlink("emulate", "board", "virtual-esp32", "--link", str(taken))
    assert res.returncode == 2 and "is not a symlink" in res.stderr and taken.read_text() == "keep me"
    res = _doorlink("emulate", "board", "virtual-esp32", "--flash-kb", "3")
    assert res.returncode == 2 and "--flash-kb" in res.stderr
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"x" * 1000)
    res = _doorlink("emulate", "board", "virtual-esp32", "--image", str(bad), "--emulator-port", "0")
    assert res.returncode == 2 and "not a flash image" in res.stderr and "Traceback" not in res.stderr
    precious = tmp_path / "precious.bin"   # the right size, not LittleFS: refused, not formatted
    precious.write_bytes(b"my data " * 1024)
    res = _doorlink("emulate", "board", "virtual-esp32", "--image", str(precious), "--emulator-port", "0")
    assert res.returncode == 2 and "holds no LittleFS" in res.stderr
    assert precious.read_bytes() == b"my data " * 1024


async def test_a_console_nobody_reads_never_blocks_the_board(virtual_board, tmp_path):
    chatty = b"for i in range(4000):\n    print('x' * 60, i)\nprint('done')\n"
    console = Console()
    vb = await virtual_board(image=make_image(tmp_path / "flash.img", 256, {"main.py": chatty}), on_console=console)
    await console.wait_for("done", timeout=30)   # 240 KB printed with no terminal on the pty
    assert (await mpremote(vb.port, "exec", "print('still here')")).strip().endswith("still here")
    with pytest.raises(ValueError, match="another virtual board"):
        await virtual_board(image=vb.image)   # one board per flash image


class Terminal:
    """The board's port opened as a terminal program would, read without
    blocking the loop the board runs in."""

    def __init__(self, port):
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.data = bytearray()

    def write(self, data):
        os.write(self.fd, data)

    async def until(self, pred, timeout=10):
        end = time.monotonic() + timeout
        while not pred(self.data):
            if time.monotonic() > end:
                raise AssertionError(f"the board did not answer; it sent {bytes(self.data[-300:])!r}")
            try:
                self.data += os.read(self.fd, 4096)
            except BlockingIOError:
                await asyncio.sleep(0.005)

    def close(self):
        os.close(self.fd)


async def test_ctrl_c_racing_the_end_of_programs_never_breaks_the_raw_repl(virtual_board):
    vb = await virtual_board()
    term = Terminal(vb.port)
    try:
        term.write(b"\r\x03\r\x01")
        await term.until(lambda d: d.endswith(b"raw REPL; CTRL-B to exit\r\n>"))
        interrupted = 0
        for k in range(30):
            done = term.data.count(b"\x04>")
            # Programs of 0 to 7 ms, a Ctrl-C sent as each one runs or ends.
            term.write(b"import time; time.sleep_ms(%d)\x04" % (k % 8))
            await asyncio.sleep((k % 5) * 0.002)
            term.write(b"\x03")
            await term.until(lambda d, done=done: d.count(b"\x04>") > done)
            interrupted += term.data.endswith(b"KeyboardInterrupt: \r\n\x04>")
        term.write(b"print(6 * 7)\x04")
        await term.until(lambda d: d.endswith(b"OK42\r\n\x04\x04>"))
        # The friendly REPL, as a terminal shows it.
        term.write(b"\x02")
        await term.until(lambda d: d.endswith(b">>> "))
        term.write(b"1 + 2\r")
        await term.until(lambda d: d.endswith(b"1 + 2\r\n3\r\n>>> "))
    finally:
        term.close()
    assert 0 < interrupted < 30
    assert vb.crashes == 0
    assert (await mpremote(vb.port, "exec", "print('fine')")).strip() == "fine"
