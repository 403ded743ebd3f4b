# The journal on a raw NOR flash partition (an ESP32 data partition through
# esp32.Partition), for boards that have one: records are programmed into
# pre-erased sectors, with no file system in between, so a 50-byte punch
# costs its frame on flash and nothing more (LittleFS rewrites a block and
# its metadata on every sync).
#
# The partition, in sectors of the device's block size (4 KiB):
#   0, 1      the ack log, a sector pair: frames of the cursor value
#             (agent/journal.py's cursor_value: an id, or [id, count, first,
#             last] while an eviction's notice is not yet journaled), each
#             programmed once into erased cells after the one before. The
#             first frame of a sector is its generation (an int): the
#             newer sector holding a valid entry is the current one; when
#             it fills, the other is erased and gets generation + 1 and the
#             value in one program. The sector holding the current value
#             is never the one erased, so a cut always leaves one.
#   2 .. N-1  the record ring: agent/journal.py's frames (D1, length, CRC,
#             CBOR [id, time, kind, name, value]) back to back from the
#             start of a sector, the rest of it erased (0xFF). Sectors are
#             used in ring order; the one after the newest is erased before
#             use, the oldest evicted (counted, with a journal_evicted
#             notice, as the file journal does) when it still holds
#             unacknowledged records.
#
# No byte is programmed twice. Recovery reads every sector: frames from the
# start until erased cells (the free space, checked erased to the end) or a
# frame that fails its CRC (a program the power cut: nothing more goes into
# that sector); sectors are ordered by their first record id, the newest is
# appended to. A cut inside an erase leaves garbage that fails its CRC: the
# sector counts as not erased and is erased again before use.
from agent import log
from agent.codecs import cbor
from agent.journal import (
    CURSOR_EVERY,
    HEADER,
    KEY,
    LAST,
    MAGIC,
    SEG,
    SIZE,
    Journal,
    cursor_value,
    decode,
    frame,
    unframe,
)

ERASED = 0xFF
ACK_SECTORS = 2
FREE = -1       # _frame_at: erased cells here
TORN = -2       # _frame_at: a frame that is not valid here
CHUNK = 256     # bytes read at a time when checking cells are erased


class RawJournal(Journal):
    """agent.journal.Journal's interface and promises (append/append_many
    durable on return, read, ack, flush_cursor, eviction with a notice,
    ids never reused) over a block device with the extended block
    protocol: readblocks(block, buf, offset), writeblocks(block, buf,
    offset) programs without erasing, ioctl(6, block) erases a block.

    `max_bytes` caps the ring (default: the whole partition)."""

    def __init__(self, dev, max_bytes=None, clock=None):
        self.dev = dev
        sector = dev.ioctl(5, 0) or 4096
        sectors = dev.ioctl(4, 0)
        if max_bytes is not None:
            sectors = min(sectors, ACK_SECTORS + max_bytes // sector)
        if sectors < ACK_SECTORS + 2:
            raise ValueError("raw journal needs a partition of at least %d sectors of %d bytes"
                             % (ACK_SECTORS + 2, sector))
        self.sectors = sectors
        self._head_buf = bytearray(HEADER)
        self._clean = bytearray(sectors)    # 1: known erased from the start to the end
        self._head = None       # the sector appended to
        self._tail = sector     # where the next record goes in it (sector: full)
        self._ack_sec = 1       # the ack sector holding the current value
        self._ack_pos = None    # where its next entry goes (None: switch sectors)
        self._gen = 0
        super().__init__("raw", (sectors - ACK_SECTORS) * sector, sector, clock)
        self.stats["erases"] = 0
        self.stats["programmed"] = 0

    # -- the device ---------------------------------------------------------
    def _read(self, sec, pos, buf):
        self.dev.readblocks(sec, buf, pos)

    def _program(self, sec, pos, data):
        self.stats["programmed"] += len(data)
        self._clean[sec] = 0
        self.dev.writeblocks(sec, data, pos)

    def _erase(self, sec):
        self.stats["erases"] += 1
        self._clean[sec] = 0
        self.dev.ioctl(6, sec)
        self._clean[sec] = 1

    def _frame_at(self, sec, pos):
        """(payload, position after it) of the frame at `pos`, or (None,
        FREE) at erased cells, or (None, TORN)."""
        end = self.segment_bytes
        if pos + HEADER > end:
            return None, FREE
        head = self._head_buf
        self._read(sec, pos, head)
        if head[0] == ERASED:
            return None, FREE
        n = (head[1] << 8) | head[2]
        if pos + HEADER + n > end:
            return None, TORN
        buf = bytearray(HEADER + n)
        self._read(sec, pos, buf)
        payload, stop = unframe(buf, 0)
        if payload is None:
            return None, TORN
        return payload, pos + stop

    def _erased_from(self, sec, pos):
        """Whether every cell from `pos` to the end of the sector is erased."""
        end = self.segment_bytes
        buf = bytearray(CHUNK)
        ff = b"\xff" * CHUNK
        while pos < end:
            n = min(CHUNK, end - pos)
            if n < CHUNK:
                buf = bytearray(n)
                ff = ff[:n]
            self._read(sec, pos, buf)
            if buf != ff:
                return False
            pos += n
        return True

    # -- opening ------------------------------------------------------------
    def _walk(self, sec):
        """Follow the frame headers from the start of a sector, CRCs
        unchecked: (start of the last frame or None, where it ends, FREE
        or TORN: what follows)."""
        end = self.segment_bytes
        head = self._head_buf
        last = None
        pos = 0
        while pos + HEADER <= end:
            self._read(sec, pos, head)
            if head[0] == ERASED:
                return last, pos, FREE
            n = (head[1] << 8) | head[2]
            if head[0] != MAGIC or pos + HEADER + n > end:
                return last, pos, TORN
            last = pos
            pos += HEADER + n
        return last, pos, FREE

    def _checked(self, sec):
        """_span frame by frame, every CRC checked."""
        first = last = at = None
        pos = 0
        while True:
            payload, nxt = self._frame_at(sec, pos)
            if payload is None:
                return first, last, at, pos, nxt
            if first is None:
                first = payload
            last, at, pos = payload, pos, nxt

    def _span(self, sec):
        """The valid frames of a sector: (payload of the first, payload of
        the last, where the last starts, where they end, whether the cells
        after them are erased to the end of the sector).

        Fast: it follows the headers and checks the CRC of the first and
        the last frame only. Each program completes before the next one
        starts, so only the last frame can be torn; a sector where either
        check fails (a torn tail, an erase cut short) is read frame by
        frame. Boot time matters: a board reads its whole partition."""
        at, end, after = self._walk(sec)
        first = last = None
        if at is not None:
            first = self._frame_at(sec, 0)[0]
            last = self._frame_at(sec, at)[0] if at else first
            if first is None or last is None:
                first, last, at, end, after = self._checked(sec)
        if after == TORN:
            self.stats["torn_sectors"] += 1
        return first, last, at, end, after == FREE and self._erased_from(sec, end)

    def _recover(self):
        self.stats["torn_sectors"] = 0
        self.acked = self._persisted = self._recover_acks()
        found = []      # (first id, last id, sector, size, appendable)
        top = self.acked
        for sec in range(ACK_SECTORS, self.sectors):
            first, last, _, size, erased = self._span(sec)
            first = decode(first) if first is not None else None
            last = decode(last) if last is not None else None
            if first is None or last is None:
                self._clean[sec] = erased and size == 0
                continue
            found.append((first[0], last[0], sec, size, erased))
            top = max(top, last[0])
        self.next_id = top + 1
        if self.stats["torn_sectors"]:
            log.count("journal_torn", self.stats["torn_sectors"])
            log.warn("journal", "%d flash sectors end in a torn write" % self.stats["torn_sectors"])
        found.sort()
        newest_last = found[-1][1] if found else None
        for first, last, sec, size, erased in found:
            newest = last == newest_last
            if last > self.acked or newest:
                self._segs.extend((sec, first, last, size))
            if newest:
                self._head = sec
                # Behind a torn write nothing more goes into this sector.
                self._tail = size if erased else self.segment_bytes
        if self._head is None:
            self._head = self.sectors - 1   # the ring starts at its first sector

    def _recover_acks(self):
        best = None     # (generation, sector, value, next position or None)
        for sec in range(ACK_SECTORS):
            first, last, at, end, erased = self._span(sec)
            gen = value = None
            try:
                gen = cbor.decode(first) if first is not None else None
            except ValueError:
                pass
            if not isinstance(gen, int) or isinstance(gen, bool):
                self._clean[sec] = erased and end == 0
                continue
            self._gen = max(self._gen, gen)
            if at:
                value = cursor_value(frame(last))
            if value is not None and (best is None or gen > best[0]):
                best = (gen, sec, value, end if erased else None)
        if best is None:
            return 0
        self._ack_sec, self._ack_pos = best[1], best[3]
        return self._take_cursor(best[2])

    # -- appending ----------------------------------------------------------
    def _write(self, rec, rid):
        if len(rec) > self.segment_bytes:
            raise ValueError("record of %d bytes over the %d byte sector" % (len(rec), self.segment_bytes))
        if self._tail + len(rec) > self.segment_bytes:
            self._next_sector(rid)
        self._program(self._head, self._tail, rec)
        self._tail += len(rec)
        self._segs[SIZE - SEG] = self._tail
        self._segs[LAST - SEG] = rid
        self.stats["bytes_written"] += len(rec)

    def _next_sector(self, rid):
        ring = self.sectors - ACK_SECTORS
        sec = ACK_SECTORS + (self._head - ACK_SECTORS + 1) % ring
        while self._holds(sec):
            self._evict_oldest()
        if not self._clean[sec]:
            if self.acked > self._persisted:
                # Acknowledged records may be in it: once they are gone from
                # flash, a cursor behind them would not keep them gone.
                self._write_cursor(self.acked)
            self._erase(sec)
        self._head = sec
        self._tail = 0
        self._segs.extend((sec, rid, rid, 0))

    def _holds(self, sec):
        segs = self._segs
        for i in range(KEY, len(segs), SEG):
            if segs[i] == sec:
                return True
        return False

    def _sync(self):
        pass    # a program is on the chip when writeblocks returns

    def _make_room(self, n):
        pass    # the ring makes room as it turns: _next_sector

    def _close_file(self):
        pass

    def _drop(self, key):
        pass    # the sector is erased when the ring comes round to it: _next_sector

    # -- reading and acknowledging ------------------------------------------
    def read(self, after_id=None, limit=32):
        """Up to `limit` records with id > after_id (default: the cursor)."""
        after = self.acked if after_id is None else max(after_id, self.acked)
        out = []
        resume = self._resume
        segs = self._segs
        for i in range(0, len(segs), SEG):
            sec, first, last, size = segs[i:i + SEG]
            if last <= after:
                continue
            # Where the last read stopped, if in this sector's records (its
            # sector may have been erased and filled again since).
            here = resume and resume[0] == after and resume[1] == sec and first <= after
            pos = resume[2] if here else 0
            while pos < size:
                payload, pos = self._frame_at(sec, pos)
                rec = decode(payload) if payload is not None else None
                if rec is None:
                    break
                if rec[0] > after:
                    out.append(rec)
                    self._resume = (rec[0], sec, pos)
                    if len(out) >= limit:
                        return out
        return out

    def ack(self, upto_id):
        """The cloud has everything up to `upto_id`. The cursor reaches
        flash every CURSOR_EVERY records, on flush_cursor() (the link goes
        idle) and before a sector holding acknowledged records is erased:
        a cursor lost to a power cut only means a few records are sent
        again (the cloud drops them by id). Unlike the file journal, a
        fully acknowledged sector costs no cursor write: it is only
        forgotten, nothing is deleted."""
        upto_id = min(upto_id, self.next_id - 1)
        if upto_id <= self.acked:
            return
        self.acked = upto_id
        if upto_id - self._persisted >= CURSOR_EVERY:
            self._write_cursor(upto_id)
        self._drop_acked_segments()

    def _write_cursor(self, value):
        entry = frame(self._cursor_payload(value))
        pos = self._ack_pos
        if pos is not None and pos + len(entry) <= self.segment_bytes:
            self._program(self._ack_sec, pos, entry)
            self._ack_pos = pos + len(entry)
        else:
            # The other sector of the pair: erased, then its generation and
            # the value in one program. Until that completes the current
            # sector holds the value.
            sec = 1 - self._ack_sec
            if not self._clean[sec]:
                self._erase(sec)
            self._gen += 1
            data = frame(cbor.encode(self._gen)) + entry
            self._program(sec, 0, data)
            self._ack_sec, self._ack_pos = sec, len(data)
        self.acked = self._persisted = value
        self.stats["cursor_writes"] += 1

    def _drop_acked_segments(self):
        # Acknowledged sectors are only forgotten: the ring erases them when
        # it comes round. The newest stays, being appended to.
        while len(self._segs) > SEG and self._segs[LAST] <= self.acked:
            del self._segs[:SEG]


def open_partition(jcfg, clock=None):
    """The raw journal a board's journal settings describe (agent/config.py
    JOURNAL_FIELDS, backend "raw"): on an ESP32 the data partition
    jcfg["partition"], its ring capped at max_kb; elsewhere an image file
    in the device's journal folder holding max_kb of records."""
    from agent.hal.flash import partition
    dev = partition(jcfg["partition"], jcfg["folder"], jcfg["max_kb"] + ACK_SECTORS * 4)
    return RawJournal(dev, jcfg["max_kb"] * 1024, clock)
