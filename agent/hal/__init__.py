# The one place that knows which Python runs the agent. Everything outside
# agent/hal/ asks here for clocks, memory figures and the network/GPIO
# adapters, so the core stays identical on MicroPython and CPython.
import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"
RUNTIME = "micropython" if MICROPYTHON else "cpython"

if MICROPYTHON:
    from time import ticks_ms, ticks_diff, ticks_add  # noqa: F401
    import gc

    def heap_live():
        """Bytes of the Python heap still referenced (after a collection)."""
        gc.collect()
        return gc.mem_alloc()

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


def collect():
    import gc
    gc.collect()


def release(module_name):
    """Forget a module needed only at start-up (config tables): on
    MicroPython its bytecode and tables live in the scarce heap."""
    sys.modules.pop(module_name, None)
    collect()


def wall_time():
    """Seconds since the Unix epoch (MicroPython's unix port and CPython agree)."""
    return time.time()


def network():
    """The WebSocket client adapter of this runtime (imported lazily: RAM)."""
    if MICROPYTHON:
        from agent.hal import net_mpy as net
    else:
        from agent.hal import net_cpython as net
    return net


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
    raise ValueError("board hal %r is not supported on %s" % (kind, RUNTIME))
