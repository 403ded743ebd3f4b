"""The agent's PNG writer (agent/codecs/png.py, its own deflate) read by a
real decoder, Pillow: random screens of every size a display may have
(heights that are not a multiple of 8 too), sparse and dense, at every
scale, decode to exactly the frame buffer's pixels; and the CPython frame
buffer draws what MicroPython's framebuf draws, byte for byte."""

import io
import random
import subprocess

from PIL import Image

from agent.codecs import png
from agent.hal.framebuf_py import FrameBuffer
from host_tools import mpy


def _pixels(buf, w, h):
    return [[(buf[(y >> 3) * w + x] >> (y & 7)) & 1 for x in range(w)] for y in range(h)]


def test_pillow_reads_every_screen_the_writer_makes():
    rng = random.Random(11)
    cases = 0
    for w, h in ((128, 64), (128, 32), (16, 8), (100, 30), (17, 63)):
        for density in (0.0, 0.02, 0.5, 0.98, 1.0):
            buf = bytearray(w * ((h + 7) // 8))
            for y in range(h):
                for x in range(w):
                    if rng.random() < density:
                        buf[(y >> 3) * w + x] |= 1 << (y & 7)
            want = _pixels(buf, w, h)
            for scale in (1, 2, 3, 4):
                data = png.encode(buf, w, h, scale)
                assert len(data) <= png.max_size(w, h, scale)
                img = Image.open(io.BytesIO(data))
                img.load()
                assert img.size == (w * scale, h * scale) and img.mode == "1"
                px = img.load()
                got = [[1 if px[x * scale + scale - 1, y * scale] else 0 for x in range(w)] for y in range(h)]
                assert got == want, (w, h, density, scale)
                cases += 1
    assert cases == 100


DRAW = """
fb.fill(0); fb.text("door-0001 ~{}|", 1, 1, 1); fb.rect(0, 12, 60, 20, 1); fb.fill_rect(70, 14, 30, 11, 1)
fb.text("PIN ****", 71, 15, 0); fb.hline(0, 63, 128, 1); fb.vline(127, 0, 64, 1); fb.text("edge\\xe9", 100, 58, 1)
"""


def test_the_cpython_frame_buffer_draws_what_framebuf_draws():
    buf = bytearray(1024)
    fb = FrameBuffer(buf, 128, 64)
    exec(DRAW, {"fb": fb})   # the same drawing text on both runtimes
    script = ("import framebuf, binascii\nbuf = bytearray(1024)\n"
              "fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)\n" + DRAW +
              "print(binascii.hexlify(buf).decode())\n")
    out = subprocess.run([mpy.tool("micropython"), "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert bytes.fromhex(out.stdout.strip()) == bytes(buf)
    assert any(buf)
