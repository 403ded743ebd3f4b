# A serial port on a unix host: /dev/serial0 on a Raspberry Pi (CPython) or
# the pty of an emulated fingerprint module (either runtime). termios puts
# the line in raw 8N1 at the baud rate; nothing else is needed, so the Pi
# agent does not depend on pyserial for its one UART.
#   port = open_port("/dev/serial0", 57600)
#   await port.write(b"...");  data = await port.read(64)  # >= 1 byte
import asyncio
import termios

from agent.hal import MICROPYTHON

# Linux c_cflag / c_cc values (MicroPython's termios exports none of them)
_CREAD = 0o200
_CLOCAL = 0o4000
_CRTSCTS = 0o20000000000
_VTIME = 5
_VMIN = 6


def _speed(baud):
    speed = getattr(termios, "B%d" % baud, None)
    if speed is None:
        raise ValueError("baud rate %d is not supported" % baud)
    return speed


def _configure(fd, baud, vmin):
    attr = termios.tcgetattr(fd)
    attr[2] = (attr[2] | _CREAD | _CLOCAL) & ~_CRTSCTS  # ignore modem lines: 3 wires only
    attr[4] = attr[5] = _speed(baud)
    attr[6][_VMIN] = vmin
    attr[6][_VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, attr)


if MICROPYTHON:
    class PosixPort:
        """The unix port has no os.read, but asyncio polls a file like a
        socket (as serial_uart.py waits on a UART): a reply is read as it
        arrives. Sleeping between empty reads instead cost up to 5 ms per
        exchange, a third of a punch's way to the cloud. The tty returns at
        once (VMIN=0), so a read after the poll never blocks."""
        __slots__ = ("_f", "_stream", "path")

        def __init__(self, path, baud):
            self.path = path
            self._f = open(path, "r+b")
            fd = self._f.fileno()
            termios.setraw(fd)
            _configure(fd, baud, 0)
            while self._f.read(256):
                pass  # stale bytes from before we opened the line
            self._stream = asyncio.StreamReader(self._f)

        async def read(self, max_n):
            while True:
                data = await self._stream.read(max_n)
                if data:
                    return data
                # Woken with nothing to read: a hung-up line polls ready
                # for good, and must not spin the loop.
                await asyncio.sleep_ms(5)

        async def write(self, data):
            view = memoryview(data)
            while view:
                n = self._f.write(view)
                view = view[n or 0:]
                if view:
                    await asyncio.sleep_ms(2)

        def close(self):
            self._f.close()

else:
    import os
    import tty

    class PosixPort:
        """Non-blocking fd; reads wake on the event loop's reader callback."""
        __slots__ = ("_fd", "path")

        def __init__(self, path, baud):
            self.path = path
            self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            try:
                tty.setraw(self._fd)
                _configure(self._fd, baud, 1)
                termios.tcflush(self._fd, termios.TCIFLUSH)
            except BaseException:
                os.close(self._fd)
                raise

        async def read(self, max_n):
            loop = asyncio.get_running_loop()
            while True:
                try:
                    data = os.read(self._fd, max_n)
                except BlockingIOError:
                    data = None
                if data:
                    return data
                if data == b"":
                    raise OSError("serial line %s hung up" % self.path)
                ready = loop.create_future()
                loop.add_reader(self._fd, _wake, ready)
                try:
                    await ready
                finally:
                    loop.remove_reader(self._fd)

        async def write(self, data):
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._fd, view)
                except BlockingIOError:
                    n = 0
                view = view[n:]
                if view:
                    await asyncio.sleep(0.002)

        def close(self):
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _wake(fut):
    if not fut.done():
        fut.set_result(None)


def open_port(path, baud=57600):
    return PosixPort(path, baud)
