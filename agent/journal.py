# The journal: every record that must reach the cloud is appended here, on
# flash, before any send, and removed only after the cloud acknowledged it.
#
# Layout of the journal folder:
#   0000000001.seg ...  append-only segment files named by their first id
#   cursor              the highest acknowledged id (replaced atomically:
#                       agent/small_file.py),
#                       or [id, count, first, last] while an eviction's
#                       notice is not yet journaled (so a power cut between
#                       evicting and journaling the notice cannot hide it)
# A record on flash:  D1 | len (2, BE) | crc32 of len+payload (4, BE) | payload
# payload: CBOR [id, time, kind, name, value].
#
# Why this shape: LittleFS (ESP32) commits data on flush and renames
# atomically; appending to a big file rewrites its last block on every
# sync, so segments stay small and trimming deletes whole files. A power
# cut can tear the last record: its CRC fails and it is skipped; the next
# valid record is found again by its marker and CRC.
import os
from binascii import crc32

from agent import log, small_file
from agent.codecs import cbor
from agent.hal import collect, dir_names, sync_dir, sync_file

MAGIC = 0xD1
HEADER = 7
MAX_RECORD = 4096
CURSOR = "cursor"
CURSOR_EVERY = 32
ENOSPC = 28
FULL_RETRIES = 8
SEG_SUFFIX = ".seg"


def frame(payload):
    n = len(payload)
    head = bytes((n >> 8, n & 0xFF))
    c = crc32(payload, crc32(head)) & 0xFFFFFFFF
    return bytes((MAGIC,)) + head + c.to_bytes(4, "big") + payload


def unframe(data, pos):
    """The payload at `pos` and the position after it, or (None, pos + 1)
    when no valid record starts there (torn, corrupt or not a record)."""
    end = len(data)
    if pos + HEADER > end or data[pos] != MAGIC:
        return None, pos + 1
    n = (data[pos + 1] << 8) | data[pos + 2]
    stop = pos + HEADER + n
    if stop > end:
        return None, pos + 1
    payload = bytes(data[pos + HEADER:stop])
    want = int.from_bytes(bytes(data[pos + 3:pos + 7]), "big")
    if crc32(payload, crc32(bytes(data[pos + 1:pos + 3]))) & 0xFFFFFFFF != want:
        return None, pos + 1
    return payload, stop


def cursor_value(data):
    """The cursor file's value: an id; or [id, count, first, last] with an
    eviction notice still to be journaled (count 0: none), maybe followed by
    [count, first, last, oldest id, newest id] of the notices journaled and
    not yet acknowledged; None when unreadable."""
    payload, _ = unframe(data, 0)
    if payload is None:
        return None
    try:
        value = cbor.decode(payload)
    except ValueError:
        return None
    if _count(value):
        return value
    if isinstance(value, list) and len(value) in (4, 9) and all(_count(v) for v in value):
        return value
    return None


def _count(v):
    return isinstance(v, int) and v is not True and v is not False and v >= 0


def decode(payload):
    """A frame's payload -> its record [id, time, kind, name, value], or
    None when it is not one (the raw-flash journal reads them too)."""
    try:
        rec = cbor.decode(payload)
    except ValueError:
        return None
    if isinstance(rec, list) and len(rec) == 5 and isinstance(rec[0], int):
        return rec
    return None


def stream(f, pos=0):
    """Yield (record, offset after it, torn_bytes) for every valid record in
    an open segment file from `pos`; torn_bytes counts garbage skipped
    before it. A final (None, end, n) reports garbage after the last record.

    Reads one record at a time: RAM is scarce and fragmented on a board, so
    a whole-segment buffer may not be available when a replay needs it."""
    skipped = 0
    if pos:
        f.seek(pos)
    while True:
        head = f.read(HEADER)
        if len(head) < HEADER:
            if head or skipped:
                yield None, pos + len(head), skipped + len(head)
            return
        payload = None
        if head[0] == MAGIC:
            n = (head[1] << 8) | head[2]
            payload = f.read(n)
            if len(payload) < n or crc32(payload, crc32(head[1:3])) & 0xFFFFFFFF != \
                    int.from_bytes(head[3:7], "big"):
                payload = None
        rec = decode(payload) if payload is not None else None
        if rec is None:
            # Not a record here: step one byte and look again (resync).
            skipped += 1
            pos += 1
            f.seek(pos)
            continue
        pos += HEADER + len(payload)
        yield rec, pos, skipped
        skipped = 0


def scan(data):
    """stream() over bytes in memory: (record or None, torn_bytes) pairs."""
    import io
    for rec, _, skipped in stream(io.BytesIO(data)):
        yield rec, skipped


def mkdirs(path):
    # MicroPython has no os.makedirs. A folder made here is synced into its
    # parent: otherwise a power cut could take the folder, and every record
    # appended to it, with it.
    parent = "/" if path.startswith("/") else "."
    cur = "/" if path.startswith("/") else ""
    for name in path.split("/"):
        if not name:
            continue
        cur = cur + name if cur in ("", "/") else cur + "/" + name
        try:
            os.mkdir(cur)
        except OSError:
            pass  # exists (anything else shows when the journal writes)
        else:
            sync_dir(parent)
        parent = cur


# What the journal knows of its segments, oldest first, is one flat list
# of small ints, SEG per segment: its key (a file journal's file number, the
# raw journal's sector), its first and last id, its size in bytes. No object
# and no name string per segment: a backlog of hundreds of segments took
# ~170 bytes of heap each as objects (64-bit unix port), 32 bytes this way.
KEY, FIRST, LAST, SIZE, SEG = 0, 1, 2, 3, 4


def seg_name(key):
    """A file journal segment's file name: its first record's id."""
    return "%010d%s" % (key, SEG_SUFFIX)


def seg_key(name):
    """The key of a segment file name, or None for a name the journal did
    not write (left alone)."""
    stem = name[:-len(SEG_SUFFIX)]
    if not name.endswith(SEG_SUFFIX) or not stem:
        return None
    for c in stem:
        if c not in "0123456789":   # not isdigit(): CPython's takes "²", which int() refuses
            return None
    key = int(stem)
    return key if seg_name(key) == name else None


class Journal:
    """Durable FIFO of records (id, time, kind, name, value).

    append() returns only once the record is on flash. read() gives records
    after an id, oldest first; ack(id) forgets everything up to id.
    """

    def __init__(self, path, max_bytes=65536, segment_bytes=4096, clock=None):
        if max_bytes < 2 * segment_bytes:
            raise ValueError("journal max_bytes must be at least twice segment_bytes")
        self.path = path
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._clock = clock
        self._segs = []
        self._file = None
        self.acked = 0
        self.next_id = 1
        self.stats = {"appended": 0, "torn_bytes": 0, "evicted": 0, "bytes_written": 0,
                      "syncs": 0, "cursor_writes": 0}
        self._evict_notice = None   # [count, first, last] not yet journaled
        # The notices journaled but not yet acknowledged, as one: [count,
        # first, last, the oldest notice's id, the newest's]. Once the
        # oldest is evicted before the cloud has it, their range goes into
        # the next notice (else it is reported nowhere; a range the newer
        # ones still carry is then said twice, which is better than never);
        # an acknowledgement past the newest forgets it. In the cursor, so
        # a reboot keeps it, and one entry, so the cursor stays small (a
        # LittleFS file of up to 64 bytes on 512-byte blocks is inline).
        self._notices = None
        self._persisted = 0         # cursor value on flash
        self._resume = None         # (id, segment key, offset) where the last read stopped
        self._recover()

    # -- opening ----------------------------------------------------------
    def _p(self, name):
        return self.path + "/" + name

    def _recover(self):
        # Lists sized once, not grown (growing doubles a list's block, and
        # hundreds of segments then ask for more than a fragmented heap
        # has), the folder read twice instead: once to count, once to fill.
        try:
            n = 0
            for name in dir_names(self.path):
                if seg_key(name) is not None:
                    n += 1
        except OSError:
            mkdirs(self.path)
        self.acked = self._persisted = self._read_cursor()
        top = self.acked
        torn_tail = False
        keys = [0] * n
        n = 0
        if keys:
            for name in dir_names(self.path):
                key = seg_key(name)
                if key is not None and n < len(keys):
                    keys[n] = key
                    n += 1
        del keys[n:]
        keys.sort()
        # Every segment's ints go into one list allocated up front: grown
        # one segment at a time, it left holes across the heap, and no
        # block for a 2 KB message (MicroPython, 10,000 records).
        segs = [0] * (SEG * len(keys))
        n = 0
        for key in keys:
            first = last = None
            torn_tail = False
            size = 0
            with open(self._p(seg_name(key)), "rb") as f:
                for rec, size, skipped in stream(f):  # noqa: B007 - the last offset is the size
                    if skipped:
                        self.stats["torn_bytes"] += skipped
                        torn_tail = rec is None
                    if rec is not None:
                        first = rec[0] if first is None else first
                        last = rec[0]
            if last is None:
                os.remove(self._p(seg_name(key)))  # nothing valid in it: a cut during its first write
                continue
            segs[n:n + SEG] = key, first, last, size
            n += SEG
            top = max(top, last)
        del segs[n:]
        keys = None
        collect()
        self._segs = segs
        self.next_id = top + 1
        if self.stats["torn_bytes"]:
            log.count("journal_torn_bytes", self.stats["torn_bytes"])
            log.warn("journal", "skipped %d bytes of torn or corrupt records" % self.stats["torn_bytes"])
        if torn_tail and segs:
            # Do not append behind garbage: start a fresh segment.
            segs[SIZE - SEG] = self.segment_bytes
        self._drop_acked_segments()

    def _read_file(self, name):
        with open(self._p(name), "rb") as f:
            return f.read()

    def _read_cursor(self):
        try:
            data = self._read_file(CURSOR)
        except OSError:
            return 0
        value = cursor_value(data)
        if value is None:
            # Rename is atomic, so this is bit rot: resend rather than lose.
            log.count("journal_bad_cursor")
            log.warn("journal", "cursor unreadable; unacknowledged state assumed (duplicates possible)")
            return 0
        return self._take_cursor(value)

    def _take_cursor(self, value):
        """The acknowledged id of a cursor value; its notices are re-armed."""
        if isinstance(value, list):
            if value[1]:
                # An eviction whose notice a power cut kept off the journal.
                self._evict_notice = value[1:4]
            self._notices = value[4:] or None
            return value[0]
        return value

    def _cursor_payload(self, value):
        """The cursor value `value` with the notices it must carry, encoded."""
        self._forget_notices(value)
        notice, held = self._evict_notice, self._notices
        if notice is None and held is None:
            return cbor.encode(value)
        return cbor.encode([value] + (notice or [0, 0, 0]) + (held or []))

    def _forget_notices(self, upto):
        # The cloud acknowledged every notice: their ranges are reported.
        if self._notices is not None and self._notices[4] <= upto:
            self._notices = None

    # -- appending ----------------------------------------------------------
    def append(self, kind, name, value, t=None):
        """Store one record durably; returns its id."""
        return self.append_many(((kind, name, value, t),))[0]

    def append_many(self, items):
        """Store a burst with one flash sync; every id is durable on return."""
        ids = []
        for kind, name, value, t in items:
            rid = self.next_id
            payload = cbor.encode([rid, t if t is not None else self._now(), kind, name, value])
            if len(payload) > MAX_RECORD:
                raise ValueError("record of %d bytes over the %d byte limit" % (len(payload), MAX_RECORD))
            self._write(frame(payload), rid)
            self.next_id = rid + 1
            ids.append(rid)
        notice = self._evict_notice
        if notice is not None:
            # Eviction is itself an event the cloud must hear about.
            self._evict_notice = None
            rid = self.next_id
            self._write(frame(cbor.encode([rid, self._now(), "event", "journal_evicted",
                                           {"count": notice[0], "first_id": notice[1],
                                            "last_id": notice[2]}])), rid)
            self.next_id = rid + 1
            held = self._notices
            self._notices = notice + [rid, rid] if held is None else \
                [held[0] + notice[0], min(held[1], notice[1]), max(held[2], notice[2]), held[3], rid]
        self._sync()
        if notice is not None:
            # The notice is on flash: the cursor no longer needs to carry it
            # (it still carries one that writing the notice itself caused).
            self._write_cursor(self.acked)
        self.stats["appended"] += len(ids)
        return ids

    def _now(self):
        # Whole seconds: an ESP32's single-precision floats cannot hold an
        # epoch time to the second, an int can.
        if self._clock is not None:
            return self._clock()
        import time
        return int(time.time())

    def _write(self, rec, rid):
        # The file system may fill up before the cap does (a cap larger than
        # the partition, or other files): make room the same way, counted.
        # LittleFS copies on write, so one freed segment may not be enough.
        for _ in range(FULL_RETRIES):
            try:
                self._write_once(rec, rid)
                return
            except OSError as e:
                if e.args[0] != ENOSPC or len(self._segs) < 2 * SEG:
                    raise
                log.count("journal_disk_full")
                self._drop_file()
                self._evict_oldest()
        self._write_once(rec, rid)

    def _drop_file(self):
        try:
            self._file.close()
        except (OSError, AttributeError):
            pass
        self._file = None

    def _write_once(self, rec, rid):
        self._make_room(len(rec))
        segs = self._segs
        if not segs or segs[SIZE - SEG] + len(rec) > self.segment_bytes:
            self._close_file()
            segs.extend((rid, rid, rid, 0))
            self._file = open(self._p(seg_name(rid)), "ab")
            sync_dir(self.path)
        elif self._file is None:
            self._file = open(self._p(seg_name(segs[KEY - SEG])), "ab")
        self._file.write(rec)
        segs[SIZE - SEG] += len(rec)
        segs[LAST - SEG] = rid
        self.stats["bytes_written"] += len(rec)

    def _sync(self):
        if self._file is not None:
            sync_file(self._file)
            self.stats["syncs"] += 1

    def _close_file(self):
        if self._file is not None:
            sync_file(self._file)
            self._file.close()
            self._file = None

    def close(self):
        self.flush_cursor()
        self._close_file()

    def _make_room(self, n):
        # The cap counts whole segments: the oldest goes first, acknowledged
        # or not; lost records are counted and reported, never silent.
        while self.size() + n > self.max_bytes and len(self._segs) > SEG:
            self._evict_oldest()

    def _pop_oldest(self):
        """(key, first, last, size) of the oldest segment, taken off."""
        seg = tuple(self._segs[:SEG])
        del self._segs[:SEG]
        return seg

    def _evict_oldest(self):
        seg = self._pop_oldest()
        seg_first, seg_last = seg[FIRST], seg[LAST]
        lost_first = max(seg_first, self.acked + 1)
        lost = seg_last - lost_first + 1 if seg_last > self.acked else 0
        if lost > 0:
            self.stats["evicted"] += lost
            log.count("journal_evicted", lost)
            log.warn("journal", "full: evicted %d unsent records (%d..%d)"
                     % (lost, lost_first, seg_last))
            notice = [lost, lost_first, seg_last]
            # Notices in this segment the cloud has not had: what they
            # reported is lost with them unless the next notice says it.
            self._forget_notices(self.acked)
            held = self._notices
            if held is not None and held[3] <= seg_last:
                notice = [notice[0] + held[0], min(notice[1], held[1]), max(notice[2], held[2])]
                self._notices = None
            old = self._evict_notice
            if old:
                notice = [notice[0] + old[0], min(notice[1], old[1]), max(notice[2], old[2])]
            self._evict_notice = notice
            # Cursor and pending notice reach flash before the records go.
            self._write_cursor(seg_last)
        self._drop(seg[KEY])

    def _drop(self, key):
        """The evicted segment's storage goes (the raw-flash journal erases
        its sector when the ring comes round instead)."""
        os.remove(self._p(seg_name(key)))

    # -- reading and acknowledging ------------------------------------------
    def size(self):
        segs = self._segs
        return sum(segs[i] for i in range(SIZE, len(segs), SEG))

    def pending(self):
        """How many records wait for an acknowledgement."""
        return max(0, self.next_id - 1 - self.acked) if self._segs else 0

    def read(self, after_id=None, limit=32):
        """Up to `limit` records with id > after_id (default: the cursor)."""
        after = self.acked if after_id is None else max(after_id, self.acked)
        out = []
        if self._file is not None:
            self._file.flush()
        # A replay reads on from where the last read stopped: start there
        # instead of rescanning the segment from its first byte.
        resume = self._resume
        segs = self._segs
        for i in range(0, len(segs), SEG):
            if segs[i + LAST] <= after:
                continue
            key = segs[i]
            start = resume[2] if resume and resume[0] == after and resume[1] == key else 0
            with open(self._p(seg_name(key)), "rb") as f:
                for rec, pos, _ in stream(f, start):
                    if rec is not None and rec[0] > after:
                        out.append(rec)
                        last_pos = (key, pos)
                        if len(out) >= limit:
                            self._resume = (rec[0], key, pos)
                            return out
        if out:
            self._resume = (out[-1][0], last_pos[0], last_pos[1])
        return out

    def ack(self, upto_id):
        """The cloud has everything up to `upto_id`: move the cursor, delete
        segments that hold nothing newer.

        The cursor reaches flash before any segment is deleted (so ids stay
        monotonic across a reboot) and otherwise every CURSOR_EVERY records:
        a cursor lost to a power cut only means a few records are sent
        again, and the cloud drops them by id."""
        upto_id = min(upto_id, self.next_id - 1)
        if upto_id <= self.acked:
            return
        self.acked = upto_id
        if (self._segs and self._segs[LAST] <= upto_id) or upto_id - self._persisted >= CURSOR_EVERY:
            self._write_cursor(upto_id)
            self._drop_acked_segments()

    def flush_cursor(self):
        """Put the in-RAM cursor on flash (when the link goes idle)."""
        if self.acked > self._persisted:
            self._write_cursor(self.acked)
            self._drop_acked_segments()

    def _write_cursor(self, value):
        small_file.write(self.path, CURSOR, frame(self._cursor_payload(value)))
        self.acked = self._persisted = value
        self.stats["cursor_writes"] += 1

    def _drop_acked_segments(self):
        # The newest segment stays while it is being appended to.
        segs = self._segs
        while len(segs) > SEG and segs[LAST] <= self.acked:
            os.remove(self._p(seg_name(self._pop_oldest()[KEY])))
        if len(segs) == SEG and segs[LAST] <= self.acked and self._file is None:
            os.remove(self._p(seg_name(self._pop_oldest()[KEY])))
