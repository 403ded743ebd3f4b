# 10,000 users on LittleFS inside MicroPython under the door board's heap
# (192 KB): a full sync, then every kind of lookup, with the heap filled so
# that only FREE_KB stays free - the agent itself takes the rest on a
# board. The flash is a LittleFS image in a file, read and written block
# by block (a RAM-backed one would not fit the heap), with ESP32's 4 KiB
# blocks. Figures: sync seconds, ms per lookup, bytes on flash.
import gc
import os
import time

from agent import log
from agent.access import policy
from agent.access.users import UserStore

HEAP_KB = 192
TIMEOUT_S = 600
USERS = 10000
PAGE = 10            # users per sync page: a page's own dicts are the cloud's, not the store's
FREE_KB = 24         # heap left free for the store (and a page of users) while it works
BLOCK = 4096
BLOCKS = 1024        # a 4 MB flash partition
MOUNT = "/flash"


class FileFlash:
    """A flash chip kept in a file: LittleFS's block device protocol."""

    def __init__(self, path):
        self.f = open(path, "r+b")

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BLOCK
        if op == 6:
            return 0
        return None


def mount(path):
    with open(path, "wb") as f:
        chunk = b"\xff" * BLOCK
        for _ in range(BLOCKS):
            f.write(chunk)
    dev = FileFlash(path)
    os.VfsLfs2.mkfs(dev)
    os.mount(os.VfsLfs2(dev), MOUNT)
    return dev


def ballast():
    """Take the heap down to FREE_KB: small pieces fill the holes the
    imports left first, then the free end, so what stays free is one run
    of FREE_KB (chained pairs, not a list: a list of thousands would need
    a block of its own)."""
    held = None
    gc.collect()
    while gc.mem_free() > FREE_KB * 1024:
        held = [held, bytearray(64)]
    gc.collect()
    return held


def user(i):
    return {"id": "user%05d" % i, "name": "User %d" % i, "cards": [3000000 + i * 7], "pin": "%06d" % (i * 13)}


def test_ten_thousand_users_on_littlefs_under_the_board_heap(tmp_path):
    log.set_level("error")
    mount(tmp_path + "/flash.img")
    store = UserStore(MOUNT + "/users/dev-1", USERS + 100)
    # The sync's code comes with the first user command, not with the store
    # (code is heap on MicroPython): part of the agent, loaded before the
    # ballast takes the heap down to what the store itself works in.
    from agent.access import changes  # noqa: F401
    probes = range(0, USERS, 97)
    card_us = [0] * len(probes)   # made before the heap is taken: the figures are the test's, not the store's
    pin_us = [0] * len(probes)
    held = ballast()
    free = gc.mem_free()

    t0 = time.ticks_ms()
    store.sync_begin()
    for p in range(0, USERS, PAGE):
        store.sync_add([user(i) for i in range(p, p + PAGE)])
    assert store.sync_commit() == USERS
    sync_s = time.ticks_diff(time.ticks_ms(), t0) / 1000

    for n, i in enumerate(probes):
        t = time.ticks_us()
        found = store.by_card(3000000 + i * 7)
        assert policy.decide(found[0], "front", 1778490000, 0) is None
        card_us[n] = time.ticks_diff(time.ticks_us(), t)
        assert [r[0] for r in found] == ["user%05d" % i]
        t = time.ticks_us()
        found = store.by_pin("%06d" % (i * 13))
        pin_us[n] = time.ticks_diff(time.ticks_us(), t)
        assert [r[0] for r in found] == ["user%05d" % i]
    assert store.by_card(2999999) == [] and store.get("user%05d" % (USERS - 1)) is not None

    # Changes after the sync, a fold of them among them, then a reboot.
    for i in range(70):
        store.put({"id": "late%d" % i, "cards": [9000000 + i]})
    store = None
    gc.collect()
    store = UserStore(MOUNT + "/users/dev-1", USERS + 100)
    assert store.count() == USERS + 70
    assert [r[0] for r in store.by_card(9000069)] == ["late69"]
    assert [r[0] for r in store.by_card(3000000 + 5000 * 7)] == ["user05000"]
    del held
    size = os.stat(MOUNT + "/users/dev-1/base")[6]
    card_us.sort()
    pin_us.sort()
    return ("user store, 10,000 users on LittleFS (4 KiB blocks, file-backed) under a 192 KB heap with %d KB "
            "left free: full sync %.1f s (pages of %d), card -> decision p50 %.2f ms p99 %.2f ms, PIN lookup p50 "
            "%.2f ms, base file %d bytes (%d per user)"
            % (free // 1024, sync_s, PAGE, card_us[len(card_us) // 2] / 1000, card_us[len(card_us) * 99 // 100] / 1000,
               pin_us[len(pin_us) // 2] / 1000, size, size // USERS))
