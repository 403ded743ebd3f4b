# The one place that knows which Python runs the agent. Everything outside
# agent/hal/ asks here for clocks, memory figures and the network/GPIO
# adapters, so the core stays identical on MicroPython and CPython.
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
RUNTIME = "micropython" if MICROPYTHON else "cpython"

# Bytes of the heap that stand in for a board's flash on a host: a ROMFS
# image read into RAM by host_tools/mp/romboot.py, which a board maps from
# flash instead. Not the agent's: its budget checks leave them out.
rom_held = 0

if MICROPYTHON:
    import gc
    from time import ticks_add, ticks_diff, ticks_ms

    def heap_live():
        """Bytes of the Python heap still referenced (after a collection)."""
        gc.collect()
        return gc.mem_alloc() - rom_held

    def format_exc(exc):
        import io
        buf = io.StringIO()
        sys.print_exception(exc, buf)
        return buf.getvalue()

    def sync_file(f):
        # LittleFS commits a file's data on flush (lfs_file_sync).
        f.flush()

    def sync_dir(path):
        pass  # LittleFS directory updates are atomic and committed at once

    def dir_names(path):
        """The names in a folder, one at a time (os.listdir's list of a
        folder of hundreds asks for one block of KB, which a fragmented
        heap may not have). OSError when it is not there."""
        import os
        for entry in os.ilistdir(path):
            yield entry[0]

else:
    def ticks_ms():
        return time.monotonic_ns() // 1000000

    def ticks_diff(a, b):
        return a - b

    def ticks_add(a, b):
        return a + b

    def heap_live():
        return None  # CPython on a Pi has no fixed heap to budget

    def format_exc(exc):
        import traceback
        return "".join(traceback.format_exception(exc))

    def sync_file(f):
        import os
        f.flush()
        os.fsync(f.fileno())

    def sync_dir(path):
        # A new or renamed file is durable only once its directory is.
        import os
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def dir_names(path):
        import os
        return os.listdir(path)


async def open_connection(host, port, ctx=None):
    """asyncio.open_connection, over TLS when `ctx` (an SSLContext) is given.
    On MicroPython, asyncio's own TLS opening leaves the TCP socket open
    when the handshake fails (a refused port, a server that is not TLS, a
    wrong CA): every failed wss:// or https:// connect kept a socket, and a
    board has about ten. So the stream is opened plain, its socket wrapped
    here (the handshake runs on the first read or write), and the raw
    socket kept beside it for drop_stream to close."""
    import asyncio
    if ctx is None:
        return await asyncio.open_connection(host, port)
    if not MICROPYTHON:
        return await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    stream, _ = await asyncio.open_connection(host, port)
    raw = stream.s
    try:
        stream.s = ctx.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        raw.close()
        raise
    stream.raw = raw
    return stream, stream


def drop_stream(writer):
    """Close an asyncio stream now, from any context (a cancelled task too).
    On MicroPython Stream.close() does nothing: only wait_closed() closes
    the socket (at once, without yielding), so its socket is closed here
    directly, and the TCP socket under a TLS one too (open_connection);
    left out, every dropped connection would keep its socket - and a board
    has about ten."""
    try:
        writer.close()
    except Exception:  # noqa: BLE001, S110 - closing a dead stream is best effort
        pass
    if MICROPYTHON:
        for sock in (getattr(writer, "s", None), getattr(writer, "raw", None)):
            try:
                if sock is not None:
                    sock.close()
            except Exception:  # noqa: BLE001, S110 - closing a dead socket is best effort
                pass


async def read_into(reader, buf):
    """Read what has arrived, up to len(buf) bytes, into `buf` (a
    bytearray or memoryview) -> the count, 0 at the end of the stream.
    MicroPython reads straight into the caller's buffer: a connection that
    reuses one buffer allocates nothing per read, which keeps a small heap
    from fragmenting."""
    if MICROPYTHON:
        while True:
            n = await reader.readinto(buf)
            # None: bytes came, but not yet a whole TLS record to decrypt
            # (a record split across TCP segments): wait for the rest.
            if n is not None:
                return n
    data = await reader.read(len(buf))
    buf[:len(data)] = data
    return len(data)


def collect():
    """Collect the garbage now, where a fixed heap wants room in one piece
    (MicroPython). CPython frees by reference count and has no fixed heap:
    a full collection there costs milliseconds for nothing (it made every
    journal recovery of the crash-model tests 10 times slower)."""
    if MICROPYTHON:
        import gc
        gc.collect()


def loading(module_name):
    """Call before importing `module_name` where the code loads lazily
    (a user command's): on MicroPython, when it is not loaded yet, collect
    first. Its code is placed first-fit, into the holes garbage left once
    that is collected; without it, the garbage is collected in the middle
    of the import, between the code already placed, and the heap is left
    in pieces (measured: a first user command refused for a 2.6 KB block
    with 108 KB free, on the door board with a display and the management
    channel at 384 KB)."""
    if module_name not in sys.modules:
        collect()


def release(module_name):
    """Forget a module needed only at start-up (config tables): on
    MicroPython its bytecode and tables live in the scarce heap. The parent
    package holds it as an attribute too; while it does, nothing is freed."""
    sys.modules.pop(module_name, None)
    parent, _, name = module_name.rpartition(".")
    package = sys.modules.get(parent)
    if package is not None and hasattr(package, name):
        delattr(package, name)
    collect()


def release_since(before):
    """Release every agent module loaded since `before` (loaded()): code
    that one start-up step needed and nothing after it does. Whatever that
    step made must be gone by then, or the module would stay, and load
    twice when next imported."""
    for name in [n for n in sys.modules if n not in before and n.startswith("agent.")]:
        release(name)


def loaded():
    """The names of the modules loaded now, for release_since()."""
    return set(sys.modules)


# ESP32 firmware before MicroPython 1.22 counts time from 2000, not 1970.
_EPOCH_SHIFT = 946684800 if time.gmtime(0)[0] == 2000 else 0


def wall_time():
    """Seconds since the Unix epoch, on every runtime."""
    return time.time() + _EPOCH_SHIFT


# The agent exits with this code when it was asked to restart (a reboot
# command) on a board that cannot reset itself: whoever started it (doorlink
# run, the test rig, a systemd unit) starts it again.
RESTART_EXIT = 75


def restart(soft=False):
    """Reset the board (`soft`: restart only its interpreter, which runs
    boot.py and main.py again on a fresh heap, with the Wi-Fi link and the
    pins as they are); elsewhere, end the process with RESTART_EXIT."""
    if sys.platform == "esp32":
        import machine
        if soft:
            machine.soft_reset()
        machine.reset()
    sys.exit(RESTART_EXIT)


def open_serial(port, baud):
    """A UART for a peripheral (the fingerprint module): on an ESP32 one of
    its UARTs, "uart2" (its default pins: TX 17, RX 16) or "uartN:TX:RX"
    (GPIO numbers); elsewhere a tty (a Pi's /dev/serial0, an emulator's pty)."""
    if port.startswith("uart"):
        from agent.hal.serial_uart import open_named
        return open_named(port, baud)
    from agent.hal.serial_posix import open_port
    return open_port(port, baud)


def board_io(board, emulator=None):
    """GPIO/sensor adapter named by the board file's `hal` field."""
    kind = board["hal"]
    if kind == "emulated":
        from agent.hal.emulated import EmulatedIO
        host, port = emulator or (board["emulator"]["host"], board["emulator"]["port"])
        return EmulatedIO(host, port)
    if kind == "gpiozero":
        from agent.hal.gpiozero_io import GpiozeroIO
        return GpiozeroIO()
    if kind == "esp32":
        from agent.hal.esp32 import Esp32IO
        return Esp32IO()
    raise ValueError("board hal %r is not supported on %s" % (kind, RUNTIME))
