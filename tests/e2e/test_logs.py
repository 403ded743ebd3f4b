"""`doorlink logs --port PORT`, run as a technician runs it (the real CLI
in its own process), following a real pty: the virtual board's, across
a power cycle, and a bare one for what a board's bytes may hold."""

import asyncio
import os
import sys
import tty

import pytest
import serial
from test_virtual_board import mpremote

from host_tools.paths import ROOT

from e2e_support import eventually

TIMEOUT = 20


class Follow:
    """`doorlink logs --port PORT ...` in its own process; .lines so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, port, *options):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "host_tools.cli", "logs", "--port", str(port), *options, cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        return cls(proc)

    async def _read(self):
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode().rstrip("\n"))

    async def seen(self, text, after=0, timeout=TIMEOUT):
        """Index of the first line from `after` on that holds `text`."""
        def find():
            return next((i + 1 for i, line in enumerate(self.lines[after:], after) if text in line), None)
        return await eventually(find, timeout) - 1

    async def end(self, interrupt=True):
        """Exit code and stderr; with `interrupt`, a follow still running is
        interrupted (Ctrl-C)."""
        if interrupt and self.proc.returncode is None:
            self.proc.send_signal(2)
        try:
            err = await asyncio.wait_for(self.proc.stderr.read(), 10)
            code = await asyncio.wait_for(self.proc.wait(), 10)
            await asyncio.wait_for(self._reader, 5)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        return code, err.decode()


def _pty():
    """A bare pty: (master fd, slave path), both raw; the slave closed here
    so that only the follower holds it."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


async def test_what_a_board_prints_is_shown_but_cannot_drive_the_terminal(tmp_path):
    master, path = _pty()
    follow = await Follow.start(path, "--timestamps", "--for", "15")
    try:
        await asyncio.sleep(0.5)    # the follower opens the port
        os.write(master, b"boot \xff\xfe ok\r\nevil \x1b]0;owned\x07 \x1b[2J done\r\n" + b"x" * 5000 + b"\r\ntail")
        await follow.seen("x" * 904)
        os.set_blocking(master, False)
        with pytest.raises(BlockingIOError):
            os.read(master, 100)    # not one byte sent to the board
        os.close(master)
        master = None
        await follow.seen("gone, waiting")   # a line without its newline shows when the port goes
    finally:
        if master is not None:
            os.close(master)
        code, err = await follow.end()
    assert code == 0, err
    text = [line.split(" ", 1)[1] for line in follow.lines]     # without the time stamps
    assert text[:2] == ["boot \ufffd\ufffd ok", "evil ^[]0;owned^G ^[[2J done"]
    assert text[2:4] == ["x" * 4096, "x" * 904]      # a line with no end comes in pieces
    assert text[4] == "tail" and text[5] == f"-- {path} gone, waiting --"
    assert all(line[:2].isdigit() and line[2] == ":" for line in follow.lines)


async def test_a_port_that_cannot_be_opened_says_why_at_once(tmp_path):
    follow = await Follow.start(tmp_path / "ttyUSB9")
    code, err = await follow.end(interrupt=False)
    assert code == 1 and f"no serial port {tmp_path / 'ttyUSB9'}" in err and "data cable" in err, err
    master, path = _pty()
    holder = serial.Serial(path, exclusive=True)   # mpremote, screen or another `doorlink logs`
    try:
        follow = await Follow.start(path)
        code, err = await follow.end(interrupt=False)
    finally:
        holder.close()
        os.close(master)
    assert code == 1 and f"{path} is busy" in err and "close that program" in err, err
    assert "Traceback" not in err


MAIN = b"""import time
try:
    n = int(open("/boots").read()) + 1
except OSError:
    n = 1
with open("/boots", "w") as f:
    f.write(str(n))
print("boot", n)
i = 0
while True:
    print("tick", n, i)
    i += 1
    time.sleep(0.1)
"""


def _ticks(lines, boot):
    return [int(line.split()[2]) for line in lines if line.startswith(f"tick {boot} ")]


async def test_logs_follows_a_board_across_a_power_cycle_and_never_interrupts_it(virtual_board, tmp_path):
    """A main.py printing a counter, copied with the real mpremote; the
    board's port a stable link, like /dev/ttyUSB0. The board is switched
    off and on again on the same link: the follow says so, comes back, and
    shows the new boot. The counter never stops while followed: no Ctrl-C
    (nor anything else) reached the board."""
    link = tmp_path / "ttyUSB0"
    vb = await virtual_board(link=link)
    (tmp_path / "main.py").write_bytes(MAIN)
    await mpremote(str(link), "fs", "cp", str(tmp_path / "main.py"), ":main.py", "+", "reset", check=False)
    follow = await Follow.start(link, "--for", "60")
    try:
        first = await follow.seen("tick 1 ")
        resets = vb.resets
        await eventually(lambda: len(_ticks(follow.lines, 1)) >= 20, TIMEOUT)
        assert vb.resets == resets
        await vb.stop()
        gone = await follow.seen(f"-- {link} gone, waiting --", first)
        vb = await virtual_board(image=vb.image, link=link)
        back = await follow.seen(f"-- {link} back --", gone)
        await follow.seen("boot 2", back)
        await eventually(lambda: len(_ticks(follow.lines, 2)) >= 5, TIMEOUT)
    finally:
        code, err = await follow.end()
        print("\n".join(follow.lines[:5] + ["..."] + follow.lines[-40:]), err)
    assert code == 0, err
    ticks = _ticks(follow.lines, 1)
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks   # every line, in order, none lost
    assert not [line for line in follow.lines if "KeyboardInterrupt" in line or line.startswith(">>>")]
