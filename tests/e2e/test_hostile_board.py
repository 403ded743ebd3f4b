# The technician's tools against a board that misbehaves: its serial output
# is untrusted input. A board whose program prints without end and ignores
# Ctrl-C, a board whose answers to `doorlink flash`'s questions are
# malformed or name paths outside /agent (a boot.py that redefines print
# in the __main__ the raw REPL shares with it), a board whose console
# carries terminal escapes and an endless traceback, a program writing a
# NUL to its stderr, a client typing at a program that reads nothing, and
# the interpreter killed with SIGKILL in the middle of flash writes. Each
# on the virtual ESP32, driven as a real board is.
import asyncio
import json
import os
import random
import signal
import sys

import littlefs
import pytest

from host_tools import board_link, flash
from host_tools.cli_common import CliError
from host_tools.paths import BOARDS
from host_tools.virtual_board import BLOCK, IN_BACKLOG, littlefs_for, make_image

from e2e_support import eventually, run_command

DOORLINK = [sys.executable, "-m", "host_tools.cli"]

FLOOD = b"""\
n = 0
while True:
    try:
        print('flood', n, 'x' * 60)
        n += 1
    except KeyboardInterrupt:
        pass
"""


async def run(*argv, timeout=60):
    return await run_command(*argv, timeout=timeout)


async def on_board(port, work, timeout=40):
    """`work(link)` with a Board on `port`, in a thread: the virtual board
    runs in this loop."""
    def attempt():
        with board_link.Board(port) as link:
            return work(link)
    return await asyncio.wait_for(asyncio.to_thread(attempt), timeout)


async def test_a_board_printing_without_end_and_ignoring_ctrl_c_is_named_not_waited_on(virtual_board, tmp_path):
    vb = await virtual_board(image=make_image(tmp_path / "flood.img", 256, {"main.py": FLOOD}))
    with pytest.raises(CliError) as refused:
        await on_board(vb.port, lambda link: link.enter_raw_repl(timeout=1))
    assert "kept printing" in refused.value.problem and "--firmware" in refused.value.fix


def _hostile_boot(replace):
    """A boot.py whose print, in the __main__ flash's code runs in, answers
    `replace` for the lines whose first word is a key."""
    return ("_print = print\nR = %r\ndef print(*a, **k):\n"
            "    if a and str(a[0])[:2] in R:\n"
            "        for line in R[str(a[0])[:2]]:\n"
            "            _print(line)\n"
            "        return\n"
            "    _print(*a, **k)\n" % (replace,)).encode()


REAL_SPACE = "S\t4096\t400"
TRAVERSAL = {"S": ["F\t/agent/../keep.py\t4\t" + "0" * 64, "D\t/agent/..", "F\t/agent//lib.py\t1\tab", REAL_SPACE]}
GARBAGE_SIZE = {"S": ["F\t/agent/y.py\tmany\th", "S\t4096\tlots", REAL_SPACE]}
NO_SPACE = {"S": ["S\t0\t99"]}
ODD_FIRMWARE = {"((": ["((1, 29, 0), 'v6')"]}
NOT_A_VERSION = {"((": ["(5, 6)"]}


@pytest.mark.parametrize(("replace", "code", "said"), [
    (TRAVERSAL, 0, "would remove /agent/old.py"),
    (GARBAGE_SIZE, 0, "would remove /agent/old.py"),
    (NO_SPACE, 1, "did not answer the file survey"),
    (ODD_FIRMWARE, 1, "sys.implementation reads"),
    (NOT_A_VERSION, 1, "sys.implementation reads"),
], ids=["traversal", "garbage-size", "no-space", "odd-firmware", "not-a-version"])
async def test_flash_takes_a_boards_answers_as_untrusted(virtual_board, tmp_path, replace, code, said):
    files = {"boot.py": _hostile_boot(replace), "keep.py": b"keep", "lib.py": b"mine", "agent/old.py": b"x = 1"}
    vb = await virtual_board(image=make_image(tmp_path / "hostile.img", 256, files))
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "d1", "token": "tok_hostile_1"}))
    got, out, err = await run(*DOORLINK, "flash", "--dry-run", "--port", vb.port, "--board",
                              str(BOARDS / "virtual-esp32.json"), "--site", str(site))
    assert got == code and said in out + err, out + err
    assert "Traceback" not in err
    # Only what SURVEY itself would print is a file the board holds: code
    # outside /agent is never in the plan, nor a folder to remove.
    assert "keep.py" not in out and "/lib.py" not in out and "/agent/.." not in out


async def test_flash_shows_a_boards_console_without_its_escapes_and_bounds_its_traceback(virtual_board, tmp_path,
                                                                                         capsys):
    main = (b"import time\n"
            b"print('\\x1b]2;owned\\x07\\x1b[2J\\x9b31m boot')\n"
            b"print('Traceback (most recent call last):')\n"
            b"for i in range(3000):\n"
            b"    print('  File \"x.py\", line %d' % i)\n"
            b"time.sleep(60)\n")
    seen = bytearray()
    vb = await virtual_board(image=make_image(tmp_path / "esc.img", 256, {"main.py": main}), on_console=seen.extend)
    # main.py asleep: a Ctrl-C that came before it armed the interrupt would
    # wait in the UART (as on a chip) and cost mpremote a retry.
    await eventually(lambda: b"line 2999" in seen, timeout=10)

    def boot(link):
        link.enter_raw_repl(timeout=5)
        return flash.watch_boot(link, 20, None)

    with pytest.raises(CliError) as crashed:
        await on_board(vb.port, boot)
    shown = capsys.readouterr().err + crashed.value.problem
    assert "owned" in shown and "boot" in shown
    assert not any(c in shown for c in "\x1b\x07\x9b"), "the board's escapes reached the terminal"
    assert "^[]2;owned^G" in shown
    # An endless traceback ends the wait and the report stays readable.
    assert len(crashed.value.problem.splitlines()) <= flash.TRACE_MAX + 5


async def test_a_nul_a_program_writes_to_stderr_does_not_swallow_its_output(virtual_board, tmp_path):
    seen = bytearray()
    vb = await virtual_board(on_console=seen.extend)
    await on_board(vb.port, lambda link: (link.enter_raw_repl(timeout=5),
                                          link.exec("import sys\nsys.stderr.write('\\x00' + 'y' * 5000)")))
    await eventually(lambda: b"y" * 5000 in seen, timeout=10)


async def test_what_is_typed_at_a_program_that_reads_nothing_is_not_all_held(virtual_board, tmp_path):
    vb = await virtual_board()
    await on_board(vb.port, lambda link: (link.enter_raw_repl(timeout=5),
                                          link.transport.exec_raw_no_follow("import time\ntime.sleep(30)")))

    def type_a_lot():
        with open(vb.port, "wb", buffering=0) as tty:
            for _ in range(64):
                tty.write(b"z" * 16384)   # 1 MB; 0x03 not among them

    await asyncio.wait_for(asyncio.to_thread(type_a_lot), 30)
    assert vb.proc.stdin.transport.get_write_buffer_size() <= IN_BACKLOG


WRITER = b"""\
import os
i = 0
while True:
    name = 'w%d' % (i % 12)
    with open(name, 'wb') as f:
        for _ in range(6):
            f.write(bytes((i & 255,)) * 1000)
    i += 1
"""


async def test_a_sigkill_in_the_middle_of_flash_writes_leaves_a_file_system_that_mounts(virtual_board, tmp_path):
    """LittleFS is power-safe: a write the interpreter dies in leaves the
    file system as before or after it, never unmountable."""
    image = make_image(tmp_path / "kill.img", 256, {"main.py": WRITER, "keep.txt": b"kept" * 100})
    vb = await virtual_board(image=image)
    rng = random.Random(7)
    for _ in range(3):
        proc = vb.proc
        await asyncio.sleep(rng.uniform(0.3, 0.8))
        proc.kill()
        await proc.wait()
        # The flash as the power cut left it, before the board boots again.
        snapshot = bytearray(image.read_bytes())
        fs = littlefs_for(len(snapshot) // BLOCK)
        fs.context.buffer = snapshot
        try:
            fs.mount()
        except littlefs.LittleFSError as e:
            raise AssertionError(f"the image does not mount after a SIGKILL: {e}") from None
        names = fs.listdir("/")
        with fs.open("keep.txt", "rb") as f:
            assert f.read() == b"kept" * 100
        for name in names:
            if name.startswith("w"):
                with fs.open(name, "rb") as f:
                    data = f.read()
                assert len(data) in (0, 1000, 2000, 3000, 4000, 5000, 6000) and len(set(data)) <= 1, name
        await eventually(lambda p=proc: vb.proc is not p and vb.proc.returncode is None, timeout=10)
    assert vb.crashes == 3


async def test_a_flash_interrupted_while_copying_says_so_and_the_next_one_completes(virtual_board, tmp_path):
    vb = await virtual_board()
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": "d1", "token": "tok_hostile_1"}))
    argv = [*DOORLINK, "flash", "--port", vb.port, "--board", str(BOARDS / "virtual-esp32.json"), "--site",
            str(site), "--timeout", "1"]
    # SIGINT as a terminal's Ctrl-C: not ignored, as a shell's background job would have it.
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ,
                                                                                  "PYTHONUNBUFFERED": "1"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        said = await asyncio.wait_for(proc.stdout.readline(), 60)   # "board on PORT: ...": the copy starts
        assert said.startswith(b"board on"), said
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130 and b"interrupted while copying" in err and b"flash again" in err, err
    # The next flash copies the rest and the agent starts (then finds no cloud at that address).
    code, out, err = await run(*argv)
    assert "unchanged" in out and "agent: doorlink" in err and "did not register" in err, out + err
