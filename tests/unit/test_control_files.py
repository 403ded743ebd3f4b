# file/list, get, put and delete (agent/control/files.py), on both
# runtimes, over a real folder: what the cloud names stays inside the data
# root (journal.path/.files); traversal, encoded escapes, absolute-looking
# and backslash paths, NUL and links planted inside the root are refused
# and leave the whole file system as it was.
import binascii
import json
import os

from agent.control import files, jail
from agent.control.jail import check_path
from agent.errors import CommandError

from support import MICROPYTHON, araises, raises, tmpdir

MAX_MESSAGE = 4096
LIMIT = jail.limit(MAX_MESSAGE)
CROWD = 10000   # entries in a crowded folder: listed in part, never held whole


class Device:
    def __init__(self, base, access_path):
        self.board = {"journal": {"path": base + "/journal", "max_kb": 4},
                      "access": {"path": access_path and base + access_path}}
        self.site = {"control": {"max_message": MAX_MESSAGE}}


def _setup(access_path=None):
    """(handlers, the test's base folder) with a journal, a user store and
    a secret beside the data root: what must never be reached."""
    base = tmpdir()
    for folder in ("/journal", "/journal/d1", "/journal/.users", "/outside"):
        os.mkdir(base + folder)
    for name, data in (("/journal/d1/seg.0", b"records"), ("/journal/.boots", b"1\n"),
                       ("/journal/.users/store", b"users"), ("/outside/secret", b"secret")):
        _write(base + name, data)
    handlers = {}
    files.register(handlers, Device(base, access_path))
    return handlers, base


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _b64(data):
    return binascii.b2a_base64(data, newline=False).decode()


def _tree(folder):
    """Everything under folder: {relative path: "dir" | "link" | content}."""
    out = {}

    def walk(rel):
        path = folder + rel
        for name, kind in jail._entries(path):
            sub = rel + "/" + name
            if kind == "dir":
                out[sub] = "dir"
                walk(sub)
            elif kind == "file":
                out[sub] = _read(folder + sub)
            else:
                out[sub] = "link"
    walk("")
    return out


def _link(target, at):
    if MICROPYTHON:   # MicroPython's os has no symlink: the shell's ln
        assert os.system("ln -s '%s' '%s'" % (target, at)) == 0
    else:
        os.symlink(target, at)


async def _error(handler, body):
    return str(await araises(CommandError, handler(body)))


def test_paths_are_checked_before_any_file_system_call():
    assert check_path("/lua/scripts/a.dat") == ["lua", "scripts", "a.dat"]
    assert check_path("lua/scripts/") == ["lua", "scripts"]
    assert check_path("/") == [] and check_path("") == []
    for path, why in (("../x", "escapes the data root"), ("a/../../b", "escapes the data root"),
                      ("/..", "escapes the data root"), ("./a", "escapes the data root"),
                      ("%2e%2e/x", "percent-encoded"), ("a%2fb", "percent-encoded"),
                      ("a\\..\\b", "backslash"), ("a\0b", "NUL"), ("//etc/passwd", "empty segment"),
                      ("a//b", "empty segment"), (".users/x", "starting with '.'"),
                      ("C:/x", "refused"), ("é", "refused"), ("a/" * 9 + "b", "deeper"),
                      ("x" * 65, "over 64"), ("a/" * 130, "over 255")):
        assert why in str(raises(CommandError, check_path, path)), path
    assert "path" in str(raises(CommandError, check_path, None))


async def test_put_get_list_delete_round_trip():
    h, base = _setup()
    data = bytes(range(256)) * 5   # binary, every byte value
    assert await h["file/put"]({"path": "/lua/scripts/a.dat", "data": _b64(data)}) is None
    assert binascii.a2b_base64(await h["file/get"]({"path": "/lua/scripts/a.dat"})) == data
    assert await h["file/put"]({"path": "lua/scripts/a.dat", "data": _b64(b"new")}) is None   # replaced whole
    assert binascii.a2b_base64(await h["file/get"]({"path": "/lua/scripts/a.dat"})) == b"new"
    assert await h["file/put"]({"path": "/dir/sub", "directory": True}) == {"directory": True}
    assert await h["file/put"]({"path": "/dir/sub", "directory": True}) == {"directory": True}   # again: fine
    assert await h["file/put"]({"path": "/e.txt", "data": ""}) is None
    assert await h["file/list"]({"path": "/"}) == [
        {"name": "dir", "type": "dir"}, {"name": "e.txt", "type": "file"}, {"name": "lua", "type": "dir"}]
    assert await h["file/list"]({"path": "/lua/scripts"}) == [{"name": "a.dat", "type": "file"}]
    # The files are where the documentation says: journal.path/.files.
    assert _read(base + "/journal/.files/lua/scripts/a.dat") == b"new"
    assert "not empty" in await _error(h["file/delete"], {"path": "/lua"})
    assert await h["file/delete"]({"path": "/lua/scripts/a.dat"}) is None
    assert await h["file/delete"]({"path": "/lua/scripts"}) is None
    assert await h["file/list"]({"path": "/lua"}) == []
    assert "no folder /lua/scripts" in await _error(h["file/get"], {"path": "/lua/scripts/a.dat"})
    assert "no folder" in await _error(h["file/list"], {"path": "/nowhere"})
    assert "is a folder" in await _error(h["file/put"], {"path": "/dir", "data": "YQ=="})
    assert "is a file" in await _error(h["file/put"], {"path": "/e.txt/x", "data": "YQ=="})
    assert "cannot be deleted" in await _error(h["file/delete"], {"path": "/"})
    assert "not base64" in await _error(h["file/put"], {"path": "/b", "data": "YW**ZA=="})
    assert "not base64" in await _error(h["file/put"], {"path": "/b", "data": "YWJ"})
    assert "data" in await _error(h["file/put"], {"path": "/b"})


async def test_traversal_attempts_are_refused_and_touch_nothing():
    h, base = _setup()
    await h["file/put"]({"path": "/keep.txt", "data": _b64(b"keep")})
    before = _tree(base)
    attempts = ("../d1/seg.0", "/../.boots", "a/../../.boots", "%2e%2e/.boots", "..%2f.boots", "..\\.boots",
                "/.boots\0", ".users/store", "//outside/secret", base + "/outside/secret", None, 7)
    for path in attempts:
        for t, body in (("file/get", {}), ("file/list", {}), ("file/delete", {}),
                        ("file/put", {"data": "eA=="}), ("file/put", {"directory": True})):
            body["path"] = path
            try:
                await h[t](body)
            except CommandError:
                continue
            # An absolute-looking path is the seed's: from the data root,
            # never the device's own root. Nothing outside may change.
            assert isinstance(path, str) and path.startswith(base), (t, path)
    after = _tree(base)
    # Only the data root may hold something new (base/... named from inside it).
    outside = sorted([k for k in after if not k.startswith("/journal/.files")])
    assert outside == sorted([k for k in before if not k.startswith("/journal/.files")])
    for k in outside:
        assert after[k] == before[k], k
    assert after["/journal/.files/keep.txt"] == b"keep"
    assert "escapes the data root" in await _error(h["file/get"], {"path": "a/../../b"})


async def test_a_link_planted_in_the_root_is_never_followed():
    h, base = _setup()
    await h["file/put"]({"path": "/d", "directory": True})
    _link(base + "/outside", base + "/journal/.files/out")
    _link(base + "/outside/secret", base + "/journal/.files/d/secret")
    before = _tree(base)
    for t, body in (("file/get", {"path": "/out/secret"}), ("file/get", {"path": "/d/secret"}),
                    ("file/list", {"path": "/out"}), ("file/delete", {"path": "/out/secret"}),
                    ("file/delete", {"path": "/d/secret"}), ("file/delete", {"path": "/out"}),
                    ("file/put", {"path": "/out/new", "data": "eA=="}),
                    ("file/put", {"path": "/d/secret", "data": "eA=="}),
                    ("file/put", {"path": "/out/sub", "directory": True})):
        assert "link" in await _error(h[t], body), (t, body)
    assert _tree(base) == before
    # Listed folders do not show links (they cannot be used).
    assert await h["file/list"]({"path": "/d"}) == []
    # A planted temporary file (a link out) is removed, never written through.
    _link(base + "/outside/secret", base + "/journal/.files/d/.put.tmp")
    await h["file/put"]({"path": "/d/x", "data": _b64(b"x")})
    assert _read(base + "/outside/secret") == b"secret"
    # The data root itself a link: refused.
    h2, base2 = _setup()
    _link(base2 + "/outside", base2 + "/journal/.files")
    assert "link" in await _error(h2["file/list"], {"path": "/"})


async def test_sizes_are_checked_before_anything_is_written_or_read():
    h, base = _setup()
    too_big = _b64(bytes(LIMIT + 1))
    before = _tree(base)
    e = await _error(h["file/put"], {"path": "/big", "data": too_big})
    assert e == "too large: %d bytes, limit %d" % (LIMIT + 1, LIMIT)
    assert _tree(base) == before
    await h["file/put"]({"path": "/fits", "data": _b64(bytes(LIMIT))})
    assert len(binascii.a2b_base64(await h["file/get"]({"path": "/fits"}))) == LIMIT
    # A file too large to carry (put there some other way) is not read.
    _write(base + "/journal/.files/huge", bytes(LIMIT + 10))
    assert await _error(h["file/get"], {"path": "/huge"}) == "too large: %d bytes, limit %d" % (LIMIT + 10, LIMIT)
    if MICROPYTHON:
        # A file that fits the message but not the heap of the moment: refused before allocating.
        from agent import hal
        tight = jail.Jail(base + "/journal/.files", LIMIT, 0, hal.heap_live() + 4096)
        assert "too large for the heap now" in str(raises(CommandError, tight.get, ["fits"]))
        assert "too large for the heap now" in str(raises(CommandError, tight.put, ["p"], _b64(bytes(LIMIT))))


async def test_a_crowded_folder_is_listed_in_part_and_says_so():
    h, base = _setup()
    await h["file/put"]({"path": "/many", "directory": True})
    for i in range(CROWD):
        _write("%s/journal/.files/many/f%03d" % (base, i), b"")
    listed = await h["file/list"]({"path": "/many"})
    # At most MAX_LIST names, and no more than half a message of them.
    assert 1 < len(listed) <= jail.MAX_LIST + 1 and len(json.dumps(listed)) < MAX_MESSAGE
    assert listed[-1]["type"] == "truncated" and listed[-1]["more"] == CROWD - (len(listed) - 1)
    assert all(e["type"] == "file" for e in listed[:-1])


async def test_a_user_store_inside_the_data_root_turns_file_access_off():
    h, base = _setup(access_path="/journal/.files/users")
    assert "file access off" in await _error(h["file/list"], {"path": "/"})
    assert "file access off" in await _error(h["file/put"], {"path": "/users/x", "data": "eA=="})


async def test_a_put_is_whole_or_nothing_and_leaves_the_journal_its_room():
    h, base = _setup()
    await h["file/put"]({"path": "/a/f", "data": _b64(b"old")})
    await h["file/put"]({"path": "/a/f", "data": _b64(b"new")})
    assert _tree(base + "/journal/.files") == {"/a": "dir", "/a/f": b"new"}   # no temporary file left
    # A file system too full to keep the journal's room: refused, nothing written.
    full = jail.Jail(base + "/journal/.files", LIMIT, 1 << 62)
    assert "flash too full" in str(raises(CommandError, full.put, ["a", "g"], _b64(b"x")))
    assert _tree(base + "/journal/.files") == {"/a": "dir", "/a/f": b"new"}


class RamBlocks:
    """A block device in RAM for os.VfsLfs2: the ESP32's file system."""

    def __init__(self, blocks, size=512):
        self.size = size
        self.data = bytearray(blocks * size)

    def readblocks(self, n, buf, off=0):
        at = n * self.size + off
        buf[:] = self.data[at:at + len(buf)]

    def writeblocks(self, n, buf, off=0):
        at = n * self.size + off
        self.data[at:at + len(buf)] = buf

    def ioctl(self, op, arg):
        return {4: len(self.data) // self.size, 5: self.size}.get(op, 0)


async def test_on_littlefs_as_on_an_esp32():
    if not MICROPYTHON:
        return   # LittleFS through os.VfsLfs2 is MicroPython's
    dev = RamBlocks(256)
    os.VfsLfs2.mkfs(dev)
    mount = "/lfs-" + "".join("%02x" % b for b in os.urandom(6))
    os.mount(os.VfsLfs2(dev), mount)
    try:
        os.mkdir(mount + "/journal")
        h = {}
        files.register(h, Device(mount, None))
        assert await h["file/put"]({"path": "/lua/a.lua", "data": _b64(b"print(1)")}) is None
        assert await h["file/list"]({"path": "/"}) == [{"name": "lua", "type": "dir"}]
        assert binascii.a2b_base64(await h["file/get"]({"path": "lua/a.lua"})) == b"print(1)"
        assert "escapes the data root" in await _error(h["file/get"], {"path": "lua/../../x"})
        assert await h["file/delete"]({"path": "/lua/a.lua"}) is None
        assert await h["file/delete"]({"path": "/lua"}) is None
        assert await h["file/list"]({"path": "/"}) == []
    finally:
        os.umount(mount)


async def test_folders_are_refused_too_when_the_flash_must_keep_the_journals_room():
    # Red team: file/put {"directory": true} made folders whatever the
    # flash had left; a stream of them filled what the journal needs.
    h, base = _setup()
    root = base + "/journal/.files"
    await h["file/put"]({"path": "/a", "directory": True})
    full = jail.Jail(root, LIMIT, 1 << 62)
    assert "flash too full" in str(raises(CommandError, full.put_folder, ["b"]))
    assert "flash too full" in str(raises(CommandError, full.put_folder, ["a", "c", "d"]))
    assert _tree(root) == {"/a": "dir"}


async def test_a_put_leaves_the_journal_file_entries_too():
    # Red team: empty files cost no bytes but an inode each; a stream of
    # them could leave the journal unable to start a segment on a Pi.
    h, base = _setup()
    if not os.statvfs(base)[5]:
        return   # a file system that counts no entries (btrfs, LittleFS)
    root = base + "/journal/.files"
    saved = jail.ENTRIES_LEFT
    jail.ENTRIES_LEFT = 1 << 62   # this module's Jail: MicroPython's handler loads a fresh one per request
    try:
        crowded = jail.Jail(root, LIMIT, 0)
        assert "file entries left" in str(raises(CommandError, crowded.put, ["e"], ""))
        assert "file entries left" in str(raises(CommandError, crowded.put_folder, ["d"]))
    finally:
        jail.ENTRIES_LEFT = saved
    assert _tree(root) == {}
    assert await h["file/put"]({"path": "/e", "data": ""}) is None
