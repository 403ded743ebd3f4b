# The file/* requests' work inside the data root (agent/control/files.py
# says where it is and loads this module for one request at a time).
#
# A path is the seed's: "/a/b" (or "a/b") from the data root. It is checked
# whole BEFORE any file-system call: a name allowlist (no "%", "\", NUL,
# ":"), no "." or ".." segment, no empty one, no name starting with "." (the
# write's temporary file is one), bounded length and depth. Then each step
# is looked at WITHOUT following links, on CPython (os.lstat) and on the
# MicroPython unix port (os.ilistdir's type, the parent listed): a link
# planted inside the root is refused, never followed, by every request. On
# an ESP32 (LittleFS has no links) that walk finds none. A local user who
# swaps a folder for a link between the check and the use already owns the
# board: the jail is against the cloud, not against root.
import os

from agent import hal, log
from agent.errors import CommandError
from agent.hal import sync_dir, sync_file

MAX_PATH = 255
MAX_NAME = 64
MAX_DEPTH = 8
MAX_LIST = 100          # entries one file/list answer holds (a 10,000-entry folder is cut)
NAME_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-+=,@() "
TMP = ".put.tmp"        # a put's new content, renamed over its file once whole
CHUNK = 2048
ENOENT = 2
ENTRIES_LEFT = 1024     # file-system entries (inodes) a put leaves for the journal's segments
S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000


def check_path(path):
    """The cloud's `path` -> its segments from the data root ([] for the
    root). CommandError saying why before any file-system call."""
    if not isinstance(path, str):
        raise CommandError('needs {"path": "/folder/name"} (from the data root)')
    if len(path) > MAX_PATH:
        raise CommandError("path over %d characters refused" % MAX_PATH)
    for bad, what in (("\0", "NUL"), ("\\", "backslash"), ("%", "percent-encoded escape")):
        if bad in path:
            raise CommandError("path with a %s refused: %r" % (what, path))
    p = path[1:] if path.startswith("/") else path
    if p.endswith("/"):
        p = p[:-1]
    if not p:
        return []
    segs = p.split("/")
    if len(segs) > MAX_DEPTH:
        raise CommandError("path deeper than %d folders refused" % MAX_DEPTH)
    for s in segs:
        if s in (".", ".."):
            raise CommandError("path escapes the data root: %r" % path)
        if not s:
            raise CommandError("path with an empty segment refused: %r" % path)
        if s[0] == ".":
            raise CommandError("names starting with '.' are not allowed: %r" % s)
        if len(s) > MAX_NAME:
            raise CommandError("name over %d characters refused" % MAX_NAME)
        for c in s:
            if c not in NAME_CHARS:
                raise CommandError("name with %r refused (letters, digits, space and ._-+=,@() only)" % c)
    return segs


def _kind(parent, name):
    """"dir", "file" or None (absent) for parent/name, links NOT followed;
    CommandError for a link or anything else."""
    mode = None
    if hal.MICROPYTHON:
        for entry in os.ilistdir(parent):
            if entry[0] == name:
                mode = entry[1]
                break
    else:
        try:
            mode = os.lstat(parent + "/" + name).st_mode
        except OSError as e:
            if e.args[0] != ENOENT:
                raise
    if mode is None:
        return None
    mode &= S_IFMT
    if mode == S_IFDIR:
        return "dir"
    if mode == S_IFREG:
        return "file"
    log.count("control_file_refused")
    if mode == S_IFLNK:
        raise CommandError("path goes through a link: refused (%s)" % name)
    raise CommandError("%s is neither a file nor a folder" % name)


class Jail:
    __slots__ = ("root", "limit", "reserve", "heap", "_made")

    def __init__(self, root, limit, reserve, heap=None):
        """`heap`: the board's heap in bytes (MicroPython), for _room()."""
        self.root = root
        self.limit = limit
        self.reserve = reserve
        self.heap = heap
        self._made = False

    def _room(self, need):
        # A file that fits the message may still not fit the heap of the
        # moment: refused before the allocation that would fail, as a door
        # task could be the one whose allocation fails.
        live = hal.heap_live() if self.heap else None
        if live is not None and live + need > self.heap:
            raise CommandError("too large for the heap now: needs about %d KB free, %d KB free"
                               % (need // 1024, (self.heap - live) // 1024))

    def _leave_room(self, size):
        # Folders take flash too (two blocks each on LittleFS): every
        # mkdir is checked as a file is, or a stream of folder puts would
        # fill the flash the journal needs.
        st = os.statvfs(self.root if self._made else self._root())
        free = st[1] * st[4]
        if free - size < self.reserve:
            raise CommandError("flash too full: %d bytes free, a put must leave %d for the journal"
                               % (free, self.reserve))
        # A Pi's file system also runs out of entries (inodes), which a
        # stream of empty files costs and the bytes above do not show.
        # LittleFS counts none (f_files 0): its entries are blocks.
        if st[5] and st[7] < ENTRIES_LEFT:
            raise CommandError("flash too full: %d file entries left, a put must leave %d for the journal"
                               % (st[7], ENTRIES_LEFT))

    def _root(self):
        if not self._made:
            from agent.journal import mkdirs
            base, _, name = self.root.rpartition("/")
            if _kind(base or "/", name) is None:
                mkdirs(self.root)
            if _kind(base or "/", name) != "dir":
                raise CommandError("the data root %s is not a folder" % self.root)
            self._made = True
        return self.root

    def walk(self, segs, make=False):
        """(parent folder, last name, its kind) with every folder on the way
        a real folder (made when `make`). `segs` non-empty."""
        cur = self._root()
        for i in range(len(segs) - 1):
            s = segs[i]
            kind = _kind(cur, s)
            if kind is None and make:
                self._leave_room(0)
                os.mkdir(cur + "/" + s)
                sync_dir(cur)
                kind = "dir"
            if kind is None:
                raise CommandError("no folder /%s" % "/".join(segs[:i + 1]))
            if kind != "dir":
                raise CommandError("/%s is a file, not a folder" % "/".join(segs[:i + 1]))
            cur = cur + "/" + s
        return cur, segs[-1], _kind(cur, segs[-1])

    def folder(self, segs):
        if not segs:
            return self._root()
        parent, name, kind = self.walk(segs)
        if kind != "dir":
            raise CommandError("no folder /%s" % "/".join(segs))
        return parent + "/" + name

    def list(self, segs, max_bytes):
        folder = self.folder(segs)
        out, more, size = [], 0, 0
        for name, kind in _entries(folder):
            if name[0] == "." or kind is None:
                continue   # not addressable (the temporary file) or a link: not shown
            cost = len(name) + 32   # as JSON, with its braces and type
            if len(out) >= MAX_LIST or size + cost > max_bytes:
                more += 1
                continue
            size += cost
            out.append({"name": name, "type": kind})
        out.sort(key=lambda e: e["name"])
        if more:
            # Still the seed's list: its last entry says what was left out.
            out.append({"name": "", "type": "truncated", "more": more})
        return out

    def get(self, segs):
        if not segs:
            raise CommandError("file/get needs a file's path, not the data root")
        parent, name, kind = self.walk(segs)
        if kind != "file":
            raise CommandError("no file /%s" % "/".join(segs))
        path = parent + "/" + name
        size = os.stat(path)[6]
        if size > self.limit:
            raise CommandError("too large: %d bytes, limit %d" % (size, self.limit))
        self._room(size * 8 // 3)   # the file and its base64, then that and its text
        import binascii
        buf = bytearray(size)
        view = memoryview(buf)
        pos = 0
        with open(path, "rb") as f:
            while pos < size:
                n = f.readinto(view[pos:pos + CHUNK])
                if not n:
                    break   # shrank meanwhile: what is there
                pos += n
        view = None
        # The file, its base64 and the reply's text are never all held:
        # at most 8/3 of the file at once.
        text = binascii.b2a_base64(buf[:pos] if pos < size else buf, newline=False)
        buf = None
        return text.decode()

    def put_folder(self, segs):
        if not segs:
            return {"directory": True}   # the root is there
        parent, name, kind = self.walk(segs, make=True)
        if kind == "file":
            raise CommandError("/%s is a file" % "/".join(segs))
        if kind is None:
            self._leave_room(0)
            os.mkdir(parent + "/" + name)
            sync_dir(parent)
        return {"directory": True}

    def put(self, segs, data):
        if not segs:
            raise CommandError("file/put needs a file's path, not the data root")
        if not isinstance(data, str):
            raise CommandError('file/put needs {"path": "/a/b", "data": "<base64>"} or {"path", "directory": true}')
        n = len(data)
        size = n // 4 * 3 - (2 if data.endswith("==") else 1 if data.endswith("=") else 0)
        if size > self.limit:
            raise CommandError("too large: %d bytes, limit %d" % (size, self.limit))
        self._room(size * 2)   # the bytes, and a margin for the write
        import binascii
        try:
            raw = binascii.a2b_base64(data) if n % 4 == 0 else None
        except ValueError:
            raw = None
        # Both runtimes skip characters outside base64: a length that is
        # not what the text promised is one.
        if raw is None or len(raw) != size:
            raise CommandError("data is not base64")
        data = None
        self._leave_room(size)
        parent, name, kind = self.walk(segs, make=True)
        if kind == "dir":
            raise CommandError("/%s is a folder" % "/".join(segs))
        tmp = parent + "/" + TMP
        try:
            os.remove(tmp)   # a leftover (or a planted link): removed, never written through
        except OSError:
            pass
        with open(tmp, "wb") as f:
            f.write(raw)
            sync_file(f)
        os.rename(tmp, parent + "/" + name)
        sync_dir(parent)

    def delete(self, segs):
        if not segs:
            raise CommandError("the data root itself cannot be deleted")
        parent, name, kind = self.walk(segs)
        path = parent + "/" + name
        if kind is None:
            raise CommandError("no file or folder /%s" % "/".join(segs))
        if kind == "file":
            os.remove(path)
        else:
            if _has_entries(path):
                raise CommandError("folder /%s is not empty: delete what it holds first" % "/".join(segs))
            os.rmdir(path)
        sync_dir(parent)


def _entries(folder):
    """(name, "dir" | "file" | None for anything else) of a folder, links
    not followed, one at a time (a big folder is never held whole)."""
    if hal.MICROPYTHON:
        for entry in os.ilistdir(folder):
            mode = entry[1] & S_IFMT
            yield entry[0], "dir" if mode == S_IFDIR else "file" if mode == S_IFREG else None
    else:
        with os.scandir(folder) as it:
            for e in it:
                yield e.name, ("dir" if e.is_dir(follow_symlinks=False) else
                               "file" if e.is_file(follow_symlinks=False) else None)


def _has_entries(folder):
    for _ in _entries(folder):
        return True
    return False


def limit(max_message):
    """Largest file moved: its base64 (4/3) and the envelope fit one
    message, so what is put can be got back."""
    return (max_message - 1024) // 4 * 3


def serve(req, body, root, max_message, reserve, heap=None):
    """One file/* request (`req`) -> its reply body; CommandError saying
    why, the flash's own refusals said as such."""
    path = body.get("path") if isinstance(body, dict) else None
    try:
        segs = check_path(path)
    except CommandError as e:
        log.count("control_file_refused")
        log.warn("control", "%s refused: %s" % (req, e))
        raise
    jail = Jail(root, limit(max_message), reserve, heap)
    try:
        if req == "file/list":
            # Names take at most half a message: the reply fits one.
            return jail.list(segs, max_message // 2)
        if req == "file/get":
            return jail.get(segs)
        if req == "file/delete":
            out = jail.delete(segs)
        elif body.get("directory") is True:
            out = jail.put_folder(segs)
        else:
            out = jail.put(segs, body.get("data"))
    except OSError as e:
        raise CommandError("%s: the flash refused (%s)" % (req, e))
    log.info("control", "%s /%s done" % (req, "/".join(segs)))   # what changed on flash
    return out
