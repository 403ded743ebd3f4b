# The NOR flash model itself (agent.hal.flash.NorFlash), inside MicroPython:
# erase to 0xFF by whole 4 KiB sectors, programs that only clear bits,
# counted overwrites, power cuts inside an erase and inside a program, a
# dead chip after a cut; and LittleFS on it without one overwrite.
import os
import random

from agent.hal.flash import NorFlash

SECTOR = 4096


def chip(sectors=4, cut_at=None, seed=1):
    random.seed(seed)
    return NorFlash(bytearray(b"\x5a" * (SECTOR * sectors)), SECTOR, cut_at=cut_at, rand=random.randrange)


def read(dev, block, n, offset=0):
    buf = bytearray(n)
    dev.readblocks(block, buf, offset)
    return bytes(buf)


def test_erase_sets_a_whole_sector_to_ff():
    dev = chip()
    assert dev.ioctl(6, 1) == 0
    assert read(dev, 1, SECTOR) == b"\xff" * SECTOR
    assert read(dev, 0, SECTOR) == b"\x5a" * SECTOR and read(dev, 2, SECTOR) == b"\x5a" * SECTOR
    assert dev.ioctl(4, 0) == 4 and dev.ioctl(5, 0) == SECTOR and dev.erases == 1


def test_a_program_only_clears_bits_and_overwrites_are_counted():
    dev = chip()
    dev.ioctl(6, 0)
    dev.writeblocks(0, b"\x0f\xf0", 100)
    assert read(dev, 0, 2, 100) == b"\x0f\xf0" and dev.overwrites == 0
    dev.writeblocks(0, b"\x0f\x00", 100)     # the same bits again, and more cleared: fine
    assert read(dev, 0, 2, 100) == b"\x0f\x00" and dev.overwrites == 0
    dev.writeblocks(0, b"\xff\x0f", 100)     # 1s over 0s: the 0s stay, the attempt is counted
    assert read(dev, 0, 2, 100) == b"\x0f\x00" and dev.overwrites == 1


def test_the_simple_block_protocol_erases_first():
    dev = chip()
    dev.writeblocks(2, b"\x81" * SECTOR)
    assert read(dev, 2, SECTOR) == b"\x81" * SECTOR and dev.erases == 1 and dev.overwrites == 0


def test_a_cut_inside_an_erase_leaves_the_sector_partly_erased():
    dev = chip(cut_at=1)
    try:
        dev.ioctl(6, 1)
        raise AssertionError("no cut")
    except OSError as e:
        assert e.args[0] == 5
    assert dev.dead and dev.cut_in == "erase"
    sector = bytes(dev.data[SECTOR:2 * SECTOR])
    ff = sector.count(b"\xff")
    assert 0 < ff < SECTOR, ff                      # some bytes erased, not all
    assert sector.count(b"\x5a") > 0                 # some untouched
    for b in sector:
        assert b | 0x5A == b                         # an erase only ever sets bits
    dev.ioctl(6, 1)                                  # dead: nothing happens any more
    dev.writeblocks(1, b"\x00" * 16, 0)
    assert bytes(dev.data[SECTOR:2 * SECTOR]) == sector


def test_a_cut_inside_a_program_leaves_a_prefix():
    prefixes = []
    for seed in range(20):
        dev = chip(cut_at=2, seed=seed)
        dev.ioctl(6, 0)
        try:
            dev.writeblocks(0, b"\x00" * 64, 32)
            raise AssertionError("no cut")
        except OSError:
            pass
        assert dev.cut_in == "program"
        got = bytes(dev.data[32:96])
        n = 0
        while n < 64 and got[n] == 0:
            n += 1
        prefixes.append(n)
        assert got[n + 1:] == b"\xff" * max(0, 63 - n), got   # after the torn byte: still erased
        buf = bytearray(b"\xee" * 8)
        dev.readblocks(0, buf, 32)
        assert buf == b"\xff" * 8                              # no power: reads as erased
    assert len(set(prefixes)) > 10 and min(prefixes) < 64, prefixes


def test_littlefs_on_nor_flash_keeps_the_rules():
    dev = NorFlash(bytearray(b"\xff" * (SECTOR * 16)), SECTOR)
    os.VfsLfs2.mkfs(dev)
    os.mount(os.VfsLfs2(dev), "/nor")
    try:
        for i in range(40):
            with open("/nor/f%d" % (i % 5), "ab") as f:
                f.write(b"record %d " % i * 20)
        os.rename("/nor/f1", "/nor/g1")
        os.remove("/nor/f2")
        with open("/nor/g1", "rb") as f:
            assert f.read().startswith(b"record 1 ")
    finally:
        os.umount("/nor")
    assert dev.erases > 0 and dev.writes > 0
    assert dev.overwrites == 0, "LittleFS programmed cells it had not erased: %d times" % dev.overwrites
