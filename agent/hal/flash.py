# Flash for MicroPython boards without a flash chip of their own (the unix
# port): a LittleFS block device over a bytearray, optionally written
# through to an image file, the way an ESP32's flash partition holds
# LittleFS. Counts what reaches the "chip", for wear figures. NorFlash
# adds the rules of a real NOR chip, and power cuts inside its operations.
# NorFile keeps those rules over an image file, used in place: the raw
# journal's partition (agent/journal_raw.py) where the board has none;
# partition() finds the real one on an ESP32.
import os
import sys


class Geometry:
    """The block protocol's ioctl, once for every device here: its size in
    blocks (4), a block's size (5), and an erase (6) done by erase()."""

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return self.block_size
        if op == 6:
            self.erase(arg)
            return 0
        return None


class BlockDev(Geometry):
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

    def erase(self, block):
        self.erases += 1   # counted only: LittleFS rewrites whole blocks here


ERASED = 0xFF


class NorFlash(BlockDev):
    """BlockDev with the rules of a NOR flash chip (an ESP32's SPI flash):
    4 KiB sectors; an erase (ioctl 6, as LittleFS asks for one before it
    programs a block) sets a whole sector to 0xFF; a program can only clear
    bits: the cell keeps old & new, so writing a 1 over a 0 leaves the 0.
    Such programs are counted in `overwrites`: each one is a bug in the
    caller (a program into a sector not erased since).

    Power can fail: `cut_at` is the number of the operation (erases and
    programs, counted in `ops`) that the cut lands in. That operation is
    left half done - a sector partly erased (some bytes 0xFF, some as they
    were, some with only a few bits erased), a program with only a prefix
    done (and the byte after it partly programmed) - and the chip is dead
    from then on: writes and erases do nothing and reads return 0xFF (no
    exception: after the cut they come from finalisers of the dead mount's
    files, which the GC may run with the heap locked). The
    cut itself raises OSError(EIO). `rand(n)` (0 <= result < n) decides
    how much of the interrupted operation got done.

    LittleFS reaches it through the extended block protocol: readblocks
    and writeblocks with an offset, ioctl(6, block) to erase."""

    def __init__(self, data, block_size=4096, image=None, cut_at=None, rand=None, erase_cut_at=None):
        super().__init__(data, block_size, image)
        self.ff = b"\xff" * block_size
        self.cut_at = cut_at
        self.erase_cut_at = erase_cut_at   # or the cut lands in this erase (counted in `erases`)
        self.rand = rand
        self.ops = 0
        self.dead = False
        self.overwrites = 0         # programs that tried to turn a 0 bit back into 1
        self.cut_in = None          # "erase" or "program": what the cut interrupted

    def _cut_now(self):
        self.ops += 1
        return self.cut_at is not None and self.ops >= self.cut_at

    def _store(self, a, data):
        self.mv[a:a + len(data)] = data
        if self.image is not None:
            self.image.seek(a)
            self.image.write(data)

    def _die(self, what):
        self.dead = True
        self.cut_in = what
        raise OSError(5)  # EIO: the power is gone

    def readblocks(self, block, buf, offset=0):
        if self.dead:
            # Reads as erased (a loop: no allocation while the heap may be
            # locked). Leaving the buffer as it was can hand LittleFS stale
            # metadata that it follows into a crash.
            for i in range(len(buf)):
                buf[i] = ERASED
            return
        super().readblocks(block, buf, offset)

    def erase(self, block):
        if self.dead:
            return
        a = block * self.block_size
        self.erases += 1
        cut = self._cut_now() or (self.erase_cut_at is not None and self.erases >= self.erase_cut_at)
        if not cut:
            self._store(a, self.ff)
            return
        # Cut inside the erase: the sector is left partly erased.
        part = bytearray(self.mv[a:a + self.block_size])
        rand = self.rand
        for i in range(len(part)):
            r = rand(4)
            if r == 0:
                part[i] = ERASED
            elif r == 1:
                part[i] |= rand(256)
        self._store(a, part)
        self._die("erase")

    def program(self, a, buf):
        if self.dead:
            return
        n = len(buf)
        self.writes += 1
        self.bytes_written += n
        cut = self._cut_now()
        if cut:
            n = self.rand(n + 1)  # only a prefix gets programmed
        old = bytes(self.mv[a:a + n])
        if old == self.ff[:n]:
            new = buf[:n]       # the usual case: programming erased cells
        else:
            new = bytearray(n)
            bad = False
            for i in range(n):
                new[i] = old[i] & buf[i]
                if new[i] != buf[i]:
                    bad = True
            if bad:
                self.overwrites += 1
        self._store(a, new)
        if cut:
            if n < len(buf):
                # ...and the byte after it partly: some of its bits cleared.
                self._store(a + n, bytes((self.mv[a + n] & (buf[n] | self.rand(256)),)))
            self._die("program")

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            # The simple block protocol: whole blocks, erased by the device.
            bs = self.block_size
            for i in range(len(buf) // bs):
                self.erase(block + i)
                self.program((block + i) * bs, memoryview(buf)[i * bs:(i + 1) * bs])
            return
        self.program(block * self.block_size + offset, buf)

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


class NorFile(Geometry):
    """A NOR flash partition kept in an image file and used in place: no
    copy in RAM, as an ESP32's partition is outside its heap. The rules of
    NorFlash (erase sets a block to 0xFF, a program only clears bits,
    programs over cells not erased counted in `overwrites`), no power cuts:
    the raw journal's partition on the unix port and CPython."""

    def __init__(self, f, size, block_size=4096):
        self.f = f
        self.block_size = block_size
        self.blocks = size // block_size
        self.bytes_written = 0
        self.writes = 0
        self.erases = 0
        self.overwrites = 0

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * self.block_size + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            bs = self.block_size
            for i in range(len(buf) // bs):
                self.erase(block + i)
                self.writeblocks(block + i, memoryview(buf)[i * bs:(i + 1) * bs], 0)
            return
        n = len(buf)
        a = block * self.block_size + offset
        old = bytearray(n)
        self.readblocks(block, old, offset)
        if old != b"\xff" * n:
            for i in range(n):
                old[i] &= buf[i]
            if old != buf:
                self.overwrites += 1
            buf = old
        self.f.seek(a)
        self.f.write(buf)
        self.writes += 1
        self.bytes_written += n

    def erase(self, block):
        self.f.seek(block * self.block_size)
        self.f.write(b"\xff" * self.block_size)
        self.erases += 1


def nor_image(path, kb, block_size=4096):
    """A NorFile of `kb` KiB in the image file `path`, made erased when
    missing or of another size."""
    size = kb * 1024
    try:
        have = os.stat(path)[6]
    except OSError:
        have = -1
    if have != size:
        ff = b"\xff" * block_size
        with open(path, "wb") as f:
            for _ in range(size // block_size):
                f.write(ff)
    # Unbuffered, as MicroPython's files are: a program reaches the file at once.
    image = open(path, "r+b") if sys.implementation.name == "micropython" else open(path, "r+b", buffering=0)
    return NorFile(image, size, block_size)


def partition(label, folder, kb):
    """The raw flash partition `label`: on an ESP32 the data partition of
    that label (its size is the partition table's); elsewhere a NOR flash
    image `label`.nor of `kb` KiB in `folder`."""
    if sys.platform == "esp32":
        import esp32
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
        if not found:
            raise OSError(2, "no data partition labelled %r in the partition table" % label)
        return found[0]
    return nor_image(folder + "/" + label + ".nor", kb)
