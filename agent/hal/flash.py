# Flash for MicroPython boards without a flash chip of their own (the unix
# port): a LittleFS block device over a bytearray, optionally written
# through to an image file, the way an ESP32's flash partition holds
# LittleFS. Counts what reaches the "chip", for wear figures.
import os


class BlockDev:
    def __init__(self, data, block_size=4096, image=None):
        self.data = data
        self.mv = memoryview(data)
        self.block_size = block_size
        self.blocks = len(data) // block_size
        self.image = image          # open file (r+b) mirroring the flash, or None
        self.bytes_written = 0
        self.writes = 0
        self.erases = 0

    def readblocks(self, block, buf, offset=0):
        a = block * self.block_size + offset
        buf[:] = self.mv[a:a + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            offset = 0
        a = block * self.block_size + offset
        self.mv[a:a + len(buf)] = buf
        self.writes += 1
        self.bytes_written += len(buf)
        if self.image is not None:
            # MicroPython's files are unbuffered: the write reaches the host
            # file at once, as a program operation reaches the chip.
            self.image.seek(a)
            self.image.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            self.erases += 1
            return 0
        return None


def mount(dev, point="/flash", fresh=False):
    """Mount LittleFS from `dev` at `point`, formatting it if asked or if
    it holds no file system yet."""
    if fresh:
        os.VfsLfs2.mkfs(dev)
    try:
        vfs = os.VfsLfs2(dev)
    except OSError:
        os.VfsLfs2.mkfs(dev)
        vfs = os.VfsLfs2(dev)
    os.mount(vfs, point)
    return vfs


def ram_flash(kb, block_size=4096):
    return BlockDev(bytearray(kb * 1024), block_size)
