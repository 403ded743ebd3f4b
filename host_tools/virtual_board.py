"""A virtual ESP32 on this host: MicroPython's unix port with the board's
heap budget, its flash a LittleFS image, behind a pty that `mpremote`
drives as it drives a USB-attached board. What `doorlink emulate board`
starts.

This module is the board's USB-serial chip and its power supply; the
board's "ROM" (the mount, the boot sequence, the REPL) is
host_tools/mp/board_firmware.py, which runs inside MicroPython. A reset
of any kind starts a fresh interpreter on the same pty (a fresh heap,
modules unloaded), as a board comes back from a reset:

    firmware exit 70 / 71   soft reset (Ctrl-D), back to the friendly / raw REPL
    firmware exit 75        hard reset (machine.reset(), the agent's hal.restart())
    anything else           the interpreter died: counted, reported on the
                            console, restarted with a back-off if it crash-loops

The UART's interrupt character lives here, as in a board's UART IRQ: while
the firmware runs a program it arms it (a line on its stderr, acknowledged
on a control pipe), and a 0x03 from the pty then becomes SIGINT
(KeyboardInterrupt in the program, even inside time.sleep or a read) instead
of a byte. The unix port prints "\\n"; a board sends "\\r\\n": a lone "\\n"
is turned into "\\r\\n" here. Output nobody reads is dropped, as a UART
with no listener loses it: the board never blocks on its console. A reader
slower than the program holds the program back instead (a UART sends at
its line speed, and the host reading it loses nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import tty
from collections.abc import Callable
from pathlib import Path

import littlefs

from agent.config import load_board
from agent.errors import ConfigError
from agent.hal import RESTART_EXIT
from host_tools import mpy
from host_tools.emulator import BoardEmulator
from host_tools.paths import BUILD, ROOT
from host_tools.runner import start_emulator

FIRMWARE = ROOT / "host_tools" / "mp" / "board_firmware.py"
BLOCK = 4096
SOFT_RESET, SOFT_RESET_RAW, HARD_RESET = 70, 71, RESTART_EXIT
MIN_FLASH_KB, MAX_FLASH_KB = 64, 16384
OUT_BACKLOG = 4096       # console bytes held for a pty nobody reads, then dropped (a UART's FIFO)
OUT_HELD_MAX = 8 * OUT_BACKLOG   # held for a slow reader: two relays' chunks, doubled by \n -> \r\n
HOLD_S = 0.5             # a full pty not read for this long has nobody reading it: drop from then on
IN_BACKLOG = 4096        # bytes typed while the board is resetting, or held for a program that does not read
CONTROL_MAX = 16         # b"\x00I-1 250\n" and no longer: a longer "line" after a NUL is a program's output
CRASH_BACKOFF_S = (0.2, 5.0)   # first and longest pause before restarting a crash-looping interpreter
STABLE_S = 5.0           # an interpreter that ran this long resets the back-off
STOP_TIMEOUT_S = 3.0
# The ROM (board_firmware: its code, the REPL, the mounted flash) takes
# about 14 KB of the interpreter's heap; on a chip that code is in flash, so
# the interpreter gets it on top of the board's budget: programs see
# heap_kb, as under `doorlink run` (tests/e2e/test_esp32_agent.py adds its
# stand-ins' share the same way).
ROM_HEAP_KB = 14


def default_image(board_name: str) -> Path:
    return BUILD / "virtual-board" / f"{board_name}.img"


def littlefs_for(blocks: int) -> littlefs.LittleFS:
    """A LittleFS that MicroPython's os.VfsLfs2 mounts and writes in turn:
    its read/prog/lookahead sizes and name length, 4 KB blocks."""
    return littlefs.LittleFS(block_size=BLOCK, block_count=blocks, read_size=32, prog_size=32,
                             lookahead_size=32, name_max=255, mount=False)


def make_image(path: str | Path, flash_kb: int, files: dict[str, bytes] | None = None) -> Path:
    """A formatted flash image of `flash_kb`, holding `files` (path -> bytes)."""
    if not MIN_FLASH_KB <= flash_kb <= MAX_FLASH_KB or flash_kb % 4:
        raise ValueError(f"flash size must be a multiple of 4 KB from {MIN_FLASH_KB} to {MAX_FLASH_KB}, "
                         f"got {flash_kb}")
    fs = littlefs_for(flash_kb // 4)
    fs.format()
    fs.mount()
    for name, data in (files or {}).items():
        parent = name.rsplit("/", 1)[0]
        if parent and parent != name:
            fs.makedirs(parent, exist_ok=True)
        with fs.open(name, "wb") as f:
            f.write(data)
    fs.unmount()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fs.context.buffer)
    return path


def open_image(path: str | Path) -> littlefs.LittleFS:
    """The file system of an image, mounted on the host (a copy: writes do
    not reach the file)."""
    data = bytearray(Path(path).read_bytes())
    if not data or len(data) % BLOCK:
        raise ValueError(f"{path} is not a flash image of {BLOCK}-byte blocks ({len(data)} bytes)")
    fs = littlefs_for(len(data) // BLOCK)
    fs.context.buffer = data
    fs.mount()
    return fs


def _check_image(path: Path) -> None:
    """An image that holds no LittleFS is formatted by the board at boot,
    as an ESP32 formats a flash it cannot mount: only a blank one (erased,
    or zeroes) is taken for that; any other file is refused, not wiped."""
    try:
        open_image(path).unmount()
        return
    except littlefs.LittleFSError:
        pass   # not LittleFS: blank or not, decided below
    with open(path, "rb") as f:
        head = f.read(2 * BLOCK)
    if head.strip(b"\xff") and head.strip(b"\x00"):
        raise ValueError(f"{path} holds no LittleFS file system; the board would format it: "
                         "give a new path (an image is made there) or an erased one")


def firmware_module() -> Path:
    """The firmware precompiled (build/virtual-board/board_firmware.mpy):
    compiling it from source on every boot would cost the board's heap."""
    out = BUILD / "virtual-board" / "board_firmware.mpy"
    if not out.exists() or out.stat().st_mtime < FIRMWARE.stat().st_mtime:
        import subprocess
        out.parent.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([mpy.tool("mpy-cross"), "-o", str(out), "-s", FIRMWARE.name, str(FIRMWARE)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"mpy-cross rejected {FIRMWARE}:\n{res.stderr}")
    return out


class _Cooker:
    """A lone \\n -> \\r\\n, across chunk boundaries."""

    def __init__(self) -> None:
        self.after_cr = False

    def __call__(self, data: bytes) -> bytes:
        if not data:
            return data
        out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if self.after_cr and data[:1] == b"\n":
            out = out[1:]
        self.after_cr = data[-1:] == b"\r"
        return out


class VirtualBoard:
    """One virtual board. `start()` makes the image if missing, opens the
    pty and boots the firmware; `port` is what mpremote connects to."""

    def __init__(self, board_path: str | Path, image_path: str | Path | None = None, heap_kb: int | None = None,
                 flash_kb: int = 2048, emulator_port: int | None = None, link: str | Path | None = None,
                 on_console: Callable[[bytes], object] | None = None) -> None:
        self.board_path = Path(board_path)
        self.board = load_board(str(board_path))
        if self.board["hal"] == "esp32" or "micropython" not in self.board["runtimes"]:
            raise ConfigError(str(board_path), "hal", "a virtual board runs MicroPython with emulated "
                              "peripherals: give a board with hal 'emulated' and runtime 'micropython' "
                              "(e.g. boards/virtual-esp32.json)")
        self.image = Path(image_path) if image_path else default_image(self.board["name"])
        self.heap_kb = heap_kb or self.board["heap_kb"]
        self.flash_kb = flash_kb
        self.link = Path(link) if link else None
        self.on_console = on_console
        self.port = ""
        self.emulator: BoardEmulator | None = None
        self.resets = 0
        self.crashes = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._emulator_port = emulator_port
        self._master = self._slave = -1
        self._ctl_w = -1
        self._image_fd = -1
        self._intr = -1
        self._out = bytearray()
        self._in = bytearray()
        self._writer_on = False
        self._drained = asyncio.Event()   # set while _out is empty
        self._unread = False              # the pty stayed full for HOLD_S: nobody reads it, until it drains
        self._cook = _Cooker()
        self._stopping = False
        self._power_task: asyncio.Task | None = None
        self._booted = asyncio.Event()

    # -- power ----------------------------------------------------------------
    async def start(self) -> VirtualBoard:
        if not self.image.exists():
            make_image(self.image, self.flash_kb)
        else:
            size = self.image.stat().st_size
            if not self.image.is_file() or not size or size % BLOCK:
                raise ValueError(f"{self.image} is not a flash image ({size} bytes, not a multiple of {BLOCK})")
            _check_image(self.image)
            self.flash_kb = size // 1024
        module = firmware_module()
        self._lock_image()
        try:
            if self.board["hal"] == "emulated":
                self.emulator = await start_emulator(self.board, self.board_path, self._emulator_port)
            self._open_pty()
            self._power_task = asyncio.create_task(self._power(module))
            booted = asyncio.create_task(self._booted.wait())
            await asyncio.wait([booted, self._power_task], return_when=asyncio.FIRST_COMPLETED)
            booted.cancel()
            if self._power_task.done():
                self._power_task.result()   # the firmware could not be started: say why
                raise RuntimeError("the virtual board's firmware ended at once")
        except BaseException:
            await self.stop()
            raise
        return self

    def info(self) -> dict:
        return {"port": self.port, "image": str(self.image),
                "emulator": f"{self.emulator.host}:{self.emulator.port}" if self.emulator else None,
                "heap_kb": self.heap_kb, "flash_kb": self.flash_kb, "pid": os.getpid()}

    async def stop(self) -> None:
        self._stopping = True
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._power_task is not None:
            try:
                await asyncio.wait_for(self._power_task, STOP_TIMEOUT_S)
            except (TimeoutError, asyncio.CancelledError):
                self._power_task.cancel()
        loop = asyncio.get_running_loop()
        if self._master >= 0:
            loop.remove_reader(self._master)
            loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1
        if self._image_fd >= 0:
            os.close(self._image_fd)   # the lock goes with it
            self._image_fd = -1
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
        if self.emulator:
            await self.emulator.stop()
            self.emulator = None

    def _lock_image(self) -> None:
        """One board per image: two interpreters writing one LittleFS
        would corrupt it."""
        self._image_fd = os.open(self.image, os.O_RDONLY)
        try:
            fcntl.flock(self._image_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._image_fd)
            self._image_fd = -1
            raise ValueError(f"{self.image} is the flash of another virtual board that is running: "
                             "stop it, or give another image") from None

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        # Both ends raw: no echo, no \n -> \r\n, no signals from the line
        # discipline; the bytes are the board's. The slave stays open here
        # so the master never reads EIO while no client has the port open.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.port)
            tmp.replace(self.link)
            self.port = str(self.link)
        asyncio.get_running_loop().add_reader(self._master, self._from_pty)

    async def _power(self, module: Path) -> None:
        mode, pause = "friendly", CRASH_BACKOFF_S[0]
        loop = asyncio.get_running_loop()
        while not self._stopping:
            began = loop.time()
            rc = await self._boot_once(module, mode)
            if self._stopping:
                return
            self.resets += 1
            if rc in (SOFT_RESET, SOFT_RESET_RAW, HARD_RESET):
                mode = "raw" if rc == SOFT_RESET_RAW else "friendly"
                continue
            # The interpreter itself died (a signal, a fatal error): the board resets.
            self.crashes += 1
            why = f"signal {-rc}" if rc < 0 else f"exit {rc}"
            self._console(f"\r\nvirtual board: interpreter died ({why}), resetting\r\n".encode())
            mode = "friendly"
            if loop.time() - began > STABLE_S:
                pause = CRASH_BACKOFF_S[0]
            await asyncio.sleep(pause)
            pause = min(pause * 2, CRASH_BACKOFF_S[1])

    async def _boot_once(self, module: Path, mode: str) -> int:
        ctl_r, self._ctl_w = os.pipe()
        self._intr = -1
        argv = [mpy.tool("micropython"), "-X", f"heapsize={self.heap_kb + ROM_HEAP_KB}k", "-m", module.stem,
                str(self.image.resolve()), mode, self.board["name"], f"/dev/fd/{ctl_r}"]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=(ctl_r,), env=mpy.micropython_env(module.parent),
                cwd=str(module.parent))
        finally:
            os.close(ctl_r)
        if self._stopping:   # stop() came while it started: it must not outlive the board
            self.proc.terminate()
        self._booted.set()
        if self._in:
            self.proc.stdin.write(bytes(self._in))
            self._in.clear()
        try:
            await asyncio.gather(self._relay_stdout(self.proc), self._relay_stderr(self.proc))
            return await self.proc.wait()
        finally:
            os.close(self._ctl_w)
            self._ctl_w = -1
            self.proc.stdin.close()
            self._intr = -1

    # -- board -> pty ---------------------------------------------------------
    async def _relay_stdout(self, proc: asyncio.subprocess.Process) -> None:
        while data := await proc.stdout.read(4096):
            self._console(self._cook(data))
            await self._room()

    async def _relay_stderr(self, proc: asyncio.subprocess.Process) -> None:
        """The firmware's control lines (b"\\x00I<char>\\n": the interrupt
        character) among what the interpreter itself prints there."""
        buf = b""
        while data := await proc.stderr.read(4096):
            await self._room()
            buf += data
            while buf:
                at = buf.find(b"\x00")
                if at < 0:
                    self._console(self._cook(buf))
                    buf = b""
                    break
                if at:
                    self._console(self._cook(buf[:at]))
                    buf = buf[at:]
                end = buf.find(b"\n", 0, CONTROL_MAX + 1)
                if end < 0 and len(buf) <= CONTROL_MAX:
                    break   # the rest of the line is still coming
                if end < 0:   # too long for a control line: a NUL a program printed, then more
                    self._console(self._cook(buf[:1]))
                    buf = buf[1:]
                    continue
                line, buf = buf[1:end], buf[end + 1:]
                self._control(line)
        if buf:
            self._console(self._cook(buf))

    def _control(self, line: bytes) -> None:
        """b"I<char> <seq>": the interrupt character is now <char> (-1:
        none), acknowledged with the byte <seq>. Anything else (a program
        writing a NUL to stderr) is console output."""
        try:
            char, seq = (int(w) for w in line[1:].split()) if line[:1] == b"I" else (None, None)
        except ValueError:
            char = seq = None
        if char is None or not -1 <= char <= 255 or not 1 <= seq <= 255:
            self._console(self._cook(b"\x00" + line + b"\n"))
            return
        self._intr = char
        os.write(self._ctl_w, bytes((seq,)))

    def _console(self, data: bytes) -> None:
        if not data:
            return
        if self.on_console is not None:
            self.on_console(data)
        if self._master < 0:
            return
        self._out += data
        # Dropped only when nobody reads; a slow reader holds the relays
        # back (_room) after a chunk or two, which OUT_HELD_MAX leaves room for.
        keep = OUT_BACKLOG if self._unread else OUT_HELD_MAX
        if len(self._out) > keep:
            del self._out[:len(self._out) - keep]
        self._flush()

    async def _room(self) -> None:
        """Wait while a reader is slower than the program; not when nobody reads."""
        if not self._out or self._unread or self._master < 0:
            return
        self._drained.clear()
        try:
            await asyncio.wait_for(self._drained.wait(), HOLD_S)
        except TimeoutError:
            self._unread = True

    def _flush(self) -> None:
        try:
            while self._out:
                n = os.write(self._master, self._out)
                del self._out[:n]
        except BlockingIOError:
            pass
        except OSError:
            self._out.clear()
        loop = asyncio.get_running_loop()
        if self._out and not self._writer_on:
            loop.add_writer(self._master, self._flush)
            self._writer_on = True
        elif not self._out and self._writer_on:
            loop.remove_writer(self._master)
            self._writer_on = False
        if not self._out:
            self._unread = False
            self._drained.set()

    # -- pty -> board ---------------------------------------------------------
    def _from_pty(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        proc = self.proc
        running = proc is not None and proc.returncode is None and self._ctl_w >= 0
        if running and self._intr >= 0 and self._intr in data:
            # The UART's IRQ sees the interrupt character: KeyboardInterrupt
            # in the running program; the byte itself is consumed.
            before, _, after = data.partition(bytes((self._intr,)))
            self._to_board(before)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            data = after
            if self._intr in data:   # more than one: one interrupt is enough, the rest are gone
                data = data.replace(bytes((self._intr,)), b"")
        self._to_board(data)

    def _to_board(self, data: bytes) -> None:
        if not data:
            return
        proc = self.proc
        if proc is not None and proc.returncode is None and self._ctl_w >= 0 and not proc.stdin.is_closing():
            # A program that reads nothing: beyond the pipe's own buffer, what
            # is sent is lost, as a UART's receive FIFO overflows (the host
            # must not hold all a client sends).
            room = IN_BACKLOG - proc.stdin.transport.get_write_buffer_size()
            if room > 0:
                proc.stdin.write(data[:room])
        else:
            self._in += data
            del self._in[:max(0, len(self._in) - IN_BACKLOG)]
