"""Following a board's console on its serial port, across resets.

Read-only by design: nothing is ever written to the port (a Ctrl-C, even a
newline, would reach the board's REPL or stop the running agent). A USB
board that resets re-enumerates and its port vanishes for a moment; a
virtual board's pty closes: both are waited for and reopened, and each
change is one line in the output, so a technician sees where a reset fell.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable

import serial

from host_tools.board_link import open_error

RETRY_S = 0.5          # how often a vanished port is tried again
READ_TIMEOUT_S = 0.2   # a read returns at least this often, so --for and Ctrl-C are timely
READ_MAX = 4096
LINE_MAX = 4096        # a board printing without newlines still shows up, in pieces this long
# C0 controls and DEL are shown as ^X (as `cat -v` does), C1 controls
# (U+0080-U+009F: a terminal may take U+009B for an escape's CSI) as \x9b:
# a board's output must not drive the technician's terminal (escape
# sequences, bells).
_VISIBLE = {c: "^" + chr(c + 64) for c in range(32) if c != 9}
_VISIBLE[127] = "^?"
_VISIBLE.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})


def visible(text: str) -> str:
    return text.translate(_VISIBLE)


class _KeptInput(serial.Serial):
    """pyserial empties the input at open: here that would drop what the
    board printed since it came back (its boot lines, a crash's traceback),
    which a pty or a USB-serial chip still holds."""

    def _reset_input_buffer(self) -> None:
        pass


def open_port(port: str, baud: int) -> serial.Serial:
    """The port, exclusively (a second reader would steal bytes), with DTR
    and RTS left released: on an ESP32 dev board they drive EN and GPIO0
    through the auto-reset circuit, and opening must not reset the board."""
    ser = _KeptInput(baudrate=baud, timeout=READ_TIMEOUT_S, exclusive=True)
    ser.dtr = False
    ser.rts = False
    ser.port = port
    ser.open()
    return ser


class ConsoleFollower:
    """Prints every line a board sends on `port` through `emit` until
    `deadline` (time.monotonic(); None: until interrupted)."""

    def __init__(self, port: str, baud: int, emit: Callable[[str], None], timestamps: bool = False) -> None:
        self.port, self.baud, self._emit, self.timestamps = port, baud, emit, timestamps
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._ser: serial.Serial | None = None

    def open(self) -> None:
        """Open the port, or say why it cannot be (a CliError with the fix)."""
        try:
            self._ser = open_port(self.port, self.baud)
        except (serial.SerialException, OSError):
            raise open_error(self.port) from None

    def run(self, deadline: float | None = None) -> None:
        """Follow until `deadline`; the port must be open()."""
        ser, self._ser = self._ser, None
        try:
            while not _past(deadline):
                try:
                    self._take(ser.read(max(1, min(ser.in_waiting, READ_MAX))))
                except (serial.SerialException, OSError):
                    ser.close()
                    ser = self._wait_back(deadline)
                    if ser is None:
                        return
        finally:
            self._flush()
            if ser is not None:
                ser.close()

    def _wait_back(self, deadline: float | None) -> serial.Serial | None:
        self._flush()
        self._out(f"-- {self.port} gone, waiting --")
        while not _past(deadline):
            time.sleep(RETRY_S)
            try:
                ser = open_port(self.port, self.baud)
            except (serial.SerialException, OSError):
                continue
            self._decoder.reset()
            self._out(f"-- {self.port} back --")
            return ser
        return None

    def _take(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + self._decoder.decode(data)).split("\n")
        if len(self._partial) > LINE_MAX:
            cut = len(self._partial) // LINE_MAX * LINE_MAX
            lines.append(self._partial[:cut])
            self._partial = self._partial[cut:]
        for line in lines:
            line = line.removesuffix("\r")
            for start in range(0, max(len(line), 1), LINE_MAX):
                self._line(line[start:start + LINE_MAX])

    def _flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, line: str) -> None:
        self._out(visible(line))

    def _out(self, line: str) -> None:
        self._emit(stamped(line) if self.timestamps else line)


def stamped(line: str) -> str:
    """`line` behind the local time it arrived, to the millisecond."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d} " + line


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
