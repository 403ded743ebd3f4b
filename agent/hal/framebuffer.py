# The display's frame buffer: framebuf.FrameBuffer (C, in the firmware) on
# MicroPython, agent/hal/framebuf_py.py (the same bytes, in Python) on
# CPython. Both draw into a MONO_VLSB bytearray: 1 KB for a 128x64 panel.
from agent.hal import MICROPYTHON


def make(width, height):
    """-> (the bytearray, a FrameBuffer drawing into it)."""
    buf = bytearray(width * ((height + 7) // 8))
    if MICROPYTHON:
        import framebuf
        return buf, framebuf.FrameBuffer(buf, width, height, framebuf.MONO_VLSB)
    from agent.hal.framebuf_py import FrameBuffer
    return buf, FrameBuffer(buf, width, height)

