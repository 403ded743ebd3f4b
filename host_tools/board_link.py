"""A MicroPython board on a serial port, driven with mpremote's own library
(mpremote.transport_serial.SerialTransport: the raw REPL, raw-paste, file
writes): this module adds what a technician needs around it. A port that
cannot be opened is told apart (missing, busy, no permission) with the fix;
a board that gives no raw REPL says what it printed instead; the files
under a folder are hashed ON the board in one exec, a few hundred bytes at
a time, so a re-flash sends only what changed without reading the flash
back over the wire; and a soft reset is followed on the console line by
line, as a board's main.py prints it.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import io
import os
import posixpath
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import serial
import serial.tools.list_ports
from mpremote.transport import TransportError, TransportExecError
from mpremote.transport_serial import SerialTransport

from host_tools.cli_common import CliError

DATA_CABLE = "a charge-only USB cable shows no port at all: use a data cable"
PROMPT = ">>> "
# Serial reads wait this long for a byte before mpremote's own timeouts
# decide: long enough for a slow board to answer, short enough that a port
# with nothing behind it ends in an error, not a hang.
READ_TIMEOUT_S = 5.0
WRITE_CHUNK = 1024   # bytes per exec when writing a file: one bytes literal, compiled on the board
# A board's output is untrusted: one that prints without end (a main.py
# looping on `except:` ignores Ctrl-C) would keep mpremote's read loops
# going forever (they time out only while nothing arrives). Each exchange
# gets a deadline and a byte budget; no honest answer comes near either.
ANSWER_MAX = 1024 * 1024


def candidates() -> list[Any]:
    """USB serial ports, as `mpremote connect auto` picks them (those that
    carry a USB vendor and product id: a board's USB-serial chip)."""
    return [p for p in sorted(serial.tools.list_ports.comports()) if p.vid is not None and p.pid is not None]


def _describe(p: Any) -> str:
    parts = [p.device] + [str(x) for x in (p.manufacturer, p.product, p.serial_number) if x]
    return "  ".join(parts)


def choose_port(port: str, ask: Callable[[str], str] | None, out: TextIO) -> str:
    """`port`, or with "auto" the one USB serial port there is; with several,
    `ask` (None when nobody can answer: stdin is not a terminal) picks."""
    if port != "auto":
        return port
    found = candidates()
    if not found:
        raise CliError("no USB serial port found (--port auto)",
                       f"plug the board in ({DATA_CABLE}), or name its port with --port", code=1)
    if len(found) == 1:
        print(f"using {_describe(found[0])}", file=out)
        return found[0].device
    listing = "\n".join(f"  {i + 1}  {_describe(p)}" for i, p in enumerate(found))
    if ask is None:
        raise CliError(f"{len(found)} USB serial ports found (--port auto):\n{listing}",
                       "name the board's with --port PORT", code=2)
    print(f"{len(found)} USB serial ports:\n{listing}", file=out)
    answer = ask(f"which one is the board? [1-{len(found)}] ").strip()
    if not answer.isdigit() or not 1 <= int(answer) <= len(found):
        raise CliError(f"{answer!r} is not one of 1-{len(found)}", "name the port with --port PORT")
    return found[int(answer) - 1].device


def _holders(port: str) -> list[str]:
    """Programs of this user that have `port` open (Linux /proc; best effort)."""
    try:
        target = os.path.realpath(port)
        pids = [d for d in os.listdir("/proc") if d.isdigit() and int(d) != os.getpid()]
    except OSError:
        return []
    found = []
    for pid in pids[:4096]:   # bounded: a busy host has a few hundred
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.path.realpath(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                name = Path(f"/proc/{pid}/comm").read_text().strip()
                found.append(f"{name} (pid {pid})")
        except OSError:
            continue
    return found


def open_error(port: str) -> CliError:
    """Why `port` cannot be opened, as a technician fixes it."""
    if not os.path.exists(port):
        ports = [p.device for p in sorted(serial.tools.list_ports.comports())]
        here = ", ".join(ports) if ports else "none"
        return CliError(f"no serial port {port} (serial ports here: {here})",
                        f"is the board plugged in? {DATA_CABLE}; `--port auto` finds a USB board", code=1)

    def busy() -> CliError:
        held = _holders(port)
        by = ": held by " + ", ".join(held) if held else ""
        return CliError(f"{port} is busy: another program has it open (mpremote, screen, minicom, "
                        f"`doorlink logs`?){by}",
                        "close that program, then run the command again", code=1)

    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EPERM):
            return CliError(f"no permission to open {port}",
                            "add yourself to the group that owns it: sudo usermod -aG dialout $USER, then log "
                            "out and in again (a new group counts from the next login)", code=1)
        if e.errno == errno.EBUSY:
            return busy()
        return CliError(f"cannot open {port}: {os.strerror(e.errno or 0)}",
                        "unplug the board, plug it in again and retry", code=1)
    try:
        import fcntl  # not on Windows, where an open port is exclusive anyway
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:
        pass
    except OSError:
        return busy()  # pyserial's exclusive=True lock, held by mpremote or another doorlink
    finally:
        os.close(fd)
    return CliError(f"cannot open {port}", "unplug the board, plug it in again and retry", code=1)


def _printed_bytes(text: str) -> str:
    """What mpremote printed as bytes reprs (b'...'), as the text it holds."""
    parts = []
    for line in text.splitlines():
        try:
            value = ast.literal_eval(line.strip())
        except (SyntaxError, ValueError):
            value = line
        parts.append(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
    return " ".join(" ".join(parts).split())


def lost(port: str, e: Exception) -> CliError:
    return CliError(f"lost the board on {port}: {e}",
                    "was it unplugged or reset? Check the cable and run the command again", code=1)


class _Bounded:
    """The transport's serial port, whose reads fail once the exchange
    armed with `bounded()` outlasts its deadline or its byte budget."""

    def __init__(self, ser: serial.Serial, port: str) -> None:
        object.__setattr__(self, "_ser", ser)
        object.__setattr__(self, "_port", port)
        object.__setattr__(self, "_limit", None)   # [start, deadline, budget, bytes read] while armed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ser, name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self._ser, name, value)   # timeout, dtr, rts: the port's own

    @contextlib.contextmanager
    def bounded(self, seconds: float, budget: int = ANSWER_MAX) -> Iterator[None]:
        now = time.monotonic()
        object.__setattr__(self, "_limit", [now, now + seconds, budget, 0])
        try:
            yield
        finally:
            object.__setattr__(self, "_limit", None)

    def read(self, size: int = 1) -> bytes:
        data = self._ser.read(size)
        limit = self._limit
        if limit is not None:
            limit[3] += len(data)
            now = time.monotonic()
            if limit[3] > limit[2] or now > limit[1]:
                raise CliError(f"the board on {self._port} kept printing ({limit[3]} bytes in {now - limit[0]:.0f} s) "
                               "instead of answering: a program on it prints without end and ignores Ctrl-C",
                               "press its reset (EN) button and run the command again at once; a main.py that "
                               "never stops (a loop with a bare `except:`) goes when MicroPython is written "
                               "again: add --firmware FILE", code=1)
        return data


class Board:
    """One open connection to a board; use as a context manager."""

    def __init__(self, port: str, baud: int = 115200) -> None:
        self.port = port
        try:
            self.transport = SerialTransport(port, baudrate=baud)
        except TransportError:
            raise open_error(port) from None
        self.transport.serial.timeout = READ_TIMEOUT_S
        self.serial = self.transport.serial = _Bounded(self.transport.serial, port)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, serial.SerialException):
            self.transport.close()

    # -- the raw REPL ---------------------------------------------------------------
    def enter_raw_repl(self, timeout: float = 10.0) -> None:
        """Interrupt whatever runs, soft-reset into the raw REPL (main.py
        does not run: a fresh heap for what comes). A program that printed
        but was slow to stop after its Ctrl-C gets a second try; a port
        that stays silent does not."""
        said = io.StringIO()
        self.serial.timeout = min(READ_TIMEOUT_S, timeout)   # a silent port: one wait, not one per byte
        try:
            with self.serial.bounded(2 * timeout + self.serial.timeout):
                for _attempt in range(2):
                    try:
                        with contextlib.redirect_stdout(said):   # mpremote prints what it got instead
                            self.transport.enter_raw_repl(soft_reset=True, timeout_overall=timeout)
                        return
                    except TransportError:
                        if not said.getvalue().strip(" \r\nb'\""):
                            break
                    except (OSError, serial.SerialException) as e:
                        raise lost(self.port, e) from None
        finally:
            self.serial.timeout = READ_TIMEOUT_S
        got = _printed_bytes(said.getvalue())[-160:]
        sent = f"it sent {got!r}" if got else "it sent nothing"
        raise CliError(f"no raw REPL on {self.port}: the board did not answer like MicroPython ({sent})",
                       "a new board, or one running other firmware, needs MicroPython first: add "
                       "--firmware FILE; if it runs MicroPython, press its reset (EN) button and retry", code=1)

    def exec(self, code: str, timeout: float = 30.0) -> str:
        """Run `code` on the board; its output. Raises TransportExecError
        (the board's traceback in .error_output) when it raised."""
        try:
            with self.serial.bounded(2 * timeout):
                out, err = self.transport.exec_raw(code, timeout=timeout)
        except (OSError, serial.SerialException, TransportError) as e:
            raise lost(self.port, e) from None
        if err:
            raise TransportExecError(out, err.decode("utf-8", "replace"))
        return out.decode("utf-8", "replace")

    def write_file(self, path: str, data: bytes, progress: Callable[[int], None]) -> None:
        """Write `data` to `path` with mpremote's fs_writefile; `progress(n)`
        after each chunk of n bytes."""
        done = [0]

        def step(written: int, _total: int) -> None:
            progress(written - done[0])
            done[0] = written

        try:
            # As long as the slowest honest board takes: a 115200-baud line
            # carries some 10 KB/s, a chunk's exec some 0.1 s of round trip.
            with self.serial.bounded(30 + len(data) / 1000):
                self.transport.fs_writefile(path, data, chunk_size=WRITE_CHUNK, progress_callback=step)
        except TransportExecError:
            raise   # the board raised: its message is the caller's to word
        except (OSError, serial.SerialException, TransportError) as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                raise
            raise lost(self.port, e) from None

    # -- the console ------------------------------------------------------------------
    def soft_reset(self) -> None:
        """Leave the raw REPL and soft-reset from the friendly prompt, as
        Ctrl-D does on a board's console: boot.py, then main.py run."""
        try:
            self.transport.exit_raw_repl()
            with self.serial.bounded(10):
                self.transport.read_until(1, PROMPT.encode(), timeout=2, timeout_overall=5)
            self.serial.write(b"\x04")
        except (OSError, serial.SerialException) as e:
            raise lost(self.port, e) from None

    def resume(self) -> None:
        """Best effort: the board runs its main.py again, as before we came
        (a command that stopped it and changed nothing)."""
        with contextlib.suppress(CliError):
            self.soft_reset()

    def lines(self, deadline: float) -> Iterator[str]:
        """Console lines until time.monotonic() passes `deadline`; a friendly
        prompt left waiting for input counts as a line of its own (">>> ")."""
        self.serial.timeout = 0.1
        pending = b""
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.serial.read(max(1, self.serial.in_waiting))
                except (OSError, serial.SerialException) as e:
                    raise lost(self.port, e) from None
                pending += chunk
                *done, pending = pending.split(b"\n")
                for raw in done:
                    yield raw.rstrip(b"\r").decode("utf-8", "replace")
                if not chunk and pending.endswith(PROMPT.encode()):
                    yield pending.decode("utf-8", "replace")
                    pending = b""
                if len(pending) > 4096:   # a line without end: show it rather than grow
                    yield pending.decode("utf-8", "replace")
                    pending = b""
        finally:
            self.serial.timeout = READ_TIMEOUT_S


# Runs on the board: size and sha256 of every file under the folders asked
# for (and of single files), the folders themselves, and the free space.
# Reads 256 bytes at a time into one buffer: a board's heap stays flat.
SURVEY = """\
import os, hashlib, binascii
_b = bytearray(256)
_m = memoryview(_b)
def _h(p):
    d = hashlib.sha256()
    n = 0
    with open(p, 'rb') as f:
        while True:
            k = f.readinto(_b)
            if not k:
                break
            d.update(_m[:k])
            n += k
    print('F', p, n, binascii.hexlify(d.digest()).decode(), sep='\\t')
def _w(p):
    for e in os.ilistdir(p):
        q = p + '/' + e[0]
        if e[1] == 0x4000:
            print('D', q, sep='\\t')
            _w(q)
        else:
            _h(q)
for _p in %r:
    try:
        os.stat(_p)
    except OSError:
        continue
    if os.stat(_p)[0] & 0x4000:
        print('D', _p, sep='\\t')
        _w(_p)
    else:
        _h(_p)
_s = os.statvfs('/')
print('S', _s[0], _s[3], sep='\\t')
"""


class Survey:
    """What a board holds under the paths asked for."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, str]] = {}   # path -> (size, sha256 hex)
        self.dirs: set[str] = set()
        self.block = 4096
        self.free = 0


def _asked(path: str, roots: list[str]) -> bool:
    """`path` is one of `roots` or under one, spelled plainly: no "..",
    "." or "//" that would lead a removal elsewhere."""
    plain = path.startswith("/") and "\x00" not in path and posixpath.normpath(path) == path
    return plain and any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def survey(board: Board, paths: list[str]) -> Survey:
    """The board's answer, taken as untrusted: a line that is not what
    SURVEY prints, or names a path not asked about, is not a file it holds
    (a name with a tab or newline in it cannot be told from such a line)."""
    s = Survey()
    seen_space = False
    for line in board.exec(SURVEY % (paths,), timeout=60).splitlines():
        parts = line.rstrip("\r").split("\t")
        try:
            if parts[0] == "F" and len(parts) == 4 and _asked(parts[1], paths):
                s.files[parts[1]] = (max(0, int(parts[2])), parts[3])
            elif parts[0] == "D" and len(parts) == 2 and _asked(parts[1], paths):
                s.dirs.add(parts[1])
            elif parts[0] == "S" and len(parts) == 3 and 0 < int(parts[1]) <= 1 << 20:
                s.block, free_blocks = int(parts[1]), max(0, int(parts[2]))
                s.free = s.block * free_blocks
                seen_space = True
        except ValueError:
            continue
    if not seen_space:
        raise CliError(f"the board on {board.port} did not answer the file survey as MicroPython does",
                       "press its reset (EN) button and run the command again", code=1)
    return s


def firmware(board: Board) -> tuple[str, int | None]:
    """(MicroPython version "1.29.0", sys.implementation._mpy or None)."""
    out = board.exec("import sys\nprint(repr((tuple(sys.implementation.version[:3]), "
                     "getattr(sys.implementation, '_mpy', None))))").strip()
    try:
        # The answer is a board's: short before it is parsed, then shaped
        # as asked (three small ints, an int or None).
        version, mpy = ast.literal_eval(out) if len(out) <= 120 else None
        if not (isinstance(version, tuple) and len(version) == 3 and (mpy is None or isinstance(mpy, int))):
            raise ValueError(out)
        if not all(isinstance(v, int) and 0 <= v < 1000 for v in version):
            raise ValueError(out)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise CliError(f"the board's sys.implementation reads {out[:120]!r}",
                       "is it MicroPython? Flash MicroPython with --firmware FILE", code=1) from None
    return ".".join(str(v) for v in version), mpy
