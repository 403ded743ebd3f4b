# The raw-flash journal (agent/journal_raw.py) inside MicroPython, on a
# flash that keeps NOR rules (agent.hal.flash.NorFlash): round trips, the
# ring turning over with eviction notices, acknowledgements that survive a
# reboot, no cell programmed twice, what it costs in programmed bytes,
# erases and heap; and seeded power cuts inside programs and erases, every
# boot checked by the oracle the LittleFS journal's crash tests use
# (tests/mp/journal_oracle.py).
import gc
import random

import journal_oracle as oracle

from agent import log
from agent.hal.flash import NorFlash, nor_image
from agent.journal_raw import ACK_SECTORS, RawJournal

HEAP_KB = 4096
TIMEOUT_S = 120
SECTOR = 4096


def chip(sectors, sector=SECTOR, **kw):
    return NorFlash(bytearray(b"\xff" * (sector * sectors)), sector, **kw)


def punch(k):
    # About what a door punch journals: a card, a door, a result.
    return {"card": 1000000 + k, "door": "front", "ok": True}


def reopen(dev):
    return RawJournal(dev, clock=lambda: 1765000000)


def test_round_trip_and_reopen():
    dev = chip(8)
    j = reopen(dev)
    assert j.pending() == 0 and j.read() == []
    ids = [j.append("event", "punch", punch(k)) for k in range(5)]
    ids += j.append_many([("event", "punch", punch(k), 7) for k in range(5, 9)])
    assert ids == list(range(1, 10)), ids
    recs = j.read(limit=100)
    assert [r[0] for r in recs] == ids and recs[0][2:] == ["event", "punch", punch(0)] and recs[-1][1] == 7
    assert [r[0] for r in j.read(after_id=4, limit=2)] == [5, 6]
    j = reopen(dev)            # power off and on: no close
    assert [r[0] for r in j.read(limit=100)] == ids and j.read(limit=100) == recs
    assert j.append("event", "punch", punch(9)) == 10 and j.pending() == 10
    assert dev.overwrites == 0 and dev.erases == 0       # a new chip is erased: nothing to erase yet


def test_ring_wraps_with_eviction_notice():
    log.set_level("error")
    dev = chip(ACK_SECTORS + 3)
    j = reopen(dev)
    n = 600                                   # ~30 KB into a 12 KB ring, nothing acknowledged
    for k in range(n):
        j.append("event", "punch", {"k": k, "pad": "p" * 20})
    recs = j.read(limit=10000)
    notices = [r for r in recs if r[3] == "journal_evicted"]
    kept = [r[4]["k"] for r in recs if r[3] == "punch"]
    assert notices and j.stats["evicted"] > 0
    assert kept == list(range(n - len(kept), n)), kept[:5]     # the newest, in order, no gaps
    assert [r[0] for r in recs] == list(range(recs[0][0], j.next_id))
    assert notices[-1][4]["last_id"] == recs[0][0] - 1, (notices[-1], recs[0])   # the newest notice: up to the kept
    # Every id is kept or counted as evicted, and survives a reboot the same.
    assert len(recs) + j.stats["evicted"] == j.next_id - 1, (len(recs), j.stats["evicted"], j.next_id)
    again = reopen(dev).read(limit=10000)
    assert again == recs
    assert dev.overwrites == 0 and dev.erases >= 5, (dev.overwrites, dev.erases)


def test_acknowledged_records_stay_gone_and_the_ack_log_turns_over():
    dev = chip(ACK_SECTORS + 2, sector=512)   # small sectors: the ack pair fills many times
    j = reopen(dev)
    last = 0
    for k in range(300):
        last = j.append("event", "punch", punch(k))
        j.ack(last - 1)
        j.flush_cursor()
        if k % 10 == 9:
            assert [r[0] for r in reopen(dev).read(limit=100)] == [last], k
    j.close()
    j = reopen(dev)
    assert j.acked == last - 1 and [r[0] for r in j.read()] == [last]
    j.ack(last)
    j.flush_cursor()
    j = reopen(dev)
    assert j.read() == [] and j.pending() == 0 and j.append("event", "punch", punch(0)) == last + 1
    assert dev.overwrites == 0
    assert j._gen > 5, j._gen    # the pair was switched many times


def test_journal_over_an_image_file(tmp_path):
    path = tmp_path + "/journal.nor"
    j = RawJournal(nor_image(path, 24), clock=lambda: 1)
    j.append_many([("event", "punch", punch(k), None) for k in range(3)])
    j.ack(1)
    j.close()
    dev = nor_image(path, 24)    # the file is what the chip held
    j = RawJournal(dev, clock=lambda: 1)
    assert [r[0] for r in j.read()] == [2, 3] and j.next_id == 4
    assert dev.blocks == 6 and dev.overwrites == 0
    # The file keeps NOR rules too: a program only clears bits, and one
    # over programmed cells is counted.
    dev.writeblocks(5, b"\x0f\xf0", 10)
    dev.writeblocks(5, b"\xff\x00", 10)
    buf = bytearray(2)
    dev.readblocks(5, buf, 10)
    assert buf == b"\x0f\x00" and dev.overwrites == 1
    dev.ioctl(6, 5)
    dev.readblocks(5, buf, 10)
    assert buf == b"\xff\xff" and dev.erases == 1


def test_a_board_chooses_the_raw_backend(tmp_path):
    """A board file's journal {"backend": "raw"} (agent/config.py) opens the
    raw journal the way device.py does: here an image file in the device's
    journal folder, holding max_kb of records."""
    import json

    from agent import config
    from agent.errors import ConfigError
    from agent.journal_raw import open_partition
    with open("boards/emulated.json") as f:
        spec = json.load(f)

    def board(journal):
        spec["journal"] = journal
        path = tmp_path + "/board.json"
        with open(path, "w") as f:
            json.dump(spec, f)
        return config.load_board(path)

    for bad, field in (({"backend": "flash"}, "journal.backend"), ({"backend": "raw", "max_kb": 4}, "journal.max_kb"),
                       ({"backend": "raw", "partition": "../x"}, "journal.partition")):
        try:
            board(bad)
            raise AssertionError("accepted %r" % bad)
        except ConfigError as e:
            assert e.field == field, (bad, e.field)
    b = board({"path": "j", "backend": "raw", "partition": "journal", "max_kb": 16})
    jcfg = b["journal"]
    jcfg["folder"] = config.journal_folder(b, {"device_id": "d1"}, "board.json", "journal.path")
    j = open_partition(jcfg, clock=lambda: 1)
    assert isinstance(j, RawJournal) and j.max_bytes == 16 * 1024
    j.append("event", "punch", punch(1))
    j = open_partition(jcfg, clock=lambda: 1)
    assert [r[4] for r in j.read()] == [punch(1)]
    assert b["journal"]["backend"] == "raw" and board({})["journal"]["backend"] == "file"


def test_bytes_programmed_per_byte_kept():
    """10,000 punches, each durable on its own (one append each), read and
    acknowledged one by one as the XML and JSON uplinks do, the cursor
    flushed when the link goes idle every 100 records. The chip is not
    new: every sector must be erased before use, as in steady state."""
    log.set_level("error")
    dev = NorFlash(bytearray(b"\x5a" * (SECTOR * (ACK_SECTORS + 30))), SECTOR)
    j = reopen(dev)
    kept = 0
    from agent.codecs import cbor
    for k in range(10000):
        rid = j.append("event", "punch", punch(k))
        kept += len(cbor.encode([rid, 1765000000, "event", "punch", punch(k)]))
        for rec in j.read(limit=1):
            j.ack(rec[0])
        if k % 100 == 99:
            j.flush_cursor()
    j.close()
    ratio = dev.bytes_written / kept
    assert dev.overwrites == 0 and j.stats["evicted"] == 0
    assert ratio <= 1.3, ratio
    return ("raw journal, 10,000 punches of %d bytes each durable on its own, acknowledged one by one: "
            "%.3f bytes programmed per byte kept (%d programmed, %d kept, %d cursor writes), "
            "%.1f erases per 1,000 records"
            % (kept // 10000, ratio, dev.bytes_written, kept, j.stats["cursor_writes"],
               dev.erases * 1000 / 10000))


def test_heap_cost():
    """Live heap of an open raw journal over a 128 KiB partition holding
    records, and what recovering it allocates at most."""
    log.set_level("error")
    dev = chip(32)
    j = reopen(dev)
    for k in range(2000):
        j.append("event", "punch", punch(k))
    j = None
    gc.collect()
    before = gc.mem_alloc()
    j = reopen(dev)
    gc.collect()
    live = gc.mem_alloc() - before
    recs = j.read()
    assert len(recs) == 32 and j.pending() == 2000
    recs = None
    gc.collect()
    assert live < 4096, live
    return "raw journal over a 128 KiB partition (30 ring sectors, 2,000 records): %d bytes of live heap" % live


# -- power cuts ---------------------------------------------------------------
TRIALS = 420
STEPS = 60             # journal operations per boot
SESSIONS = 3           # boots cut per trial; one more boot checks


class Watched(oracle.watched(RawJournal)):
    pass


def raw_trial(seed, totals):
    """One seeded workload over SESSIONS boots, each cut inside a program or
    an erase (the boot after a cut sometimes cut in its first operations),
    and a last boot that only checks. Half the trials use 512-byte
    sectors, so the ring and the ack pair turn over many times."""
    random.seed(seed)
    rand = random.randrange
    sector = 512 if seed % 2 else SECTOR
    sectors = ACK_SECTORS + (4 if seed % 2 else 2)
    o = oracle.Oracle()
    data = bytearray(b"\xff" * (sector * sectors))
    cell = [None]

    def alive():
        return not cell[0].dead

    def open_journal():
        return Watched(o, cell[0], clock=lambda: seed)

    early = False
    for session in range(SESSIONS + 1):
        cut_at = erase_cut_at = None
        if session == SESSIONS:
            pass
        elif session and rand(3) == 0:
            cut_at = 1 + rand(4)     # the first flash operations after the boot
            early = True
        elif rand(4) == 0:
            erase_cut_at = 1 + rand(2)
        else:
            cut_at = 1 + rand(STEPS)
        dev = cell[0] = NorFlash(data, sector, cut_at=cut_at, rand=rand, erase_cut_at=erase_cut_at)
        try:
            j = open_journal()
            o.boot(j, "boot %d" % session)
            if session < SESSIONS:
                oracle.run(j, o, rand, STEPS, alive, open_journal)
        except oracle.Cut:
            pass
        oracle.count_session(totals, dev, early)
        early = False
        data = bytearray(dev.data)    # what the chip holds at the next power-on
    oracle.count_trial(totals, o)
    return o.problems


def run_trials(count):
    log.set_level("error")
    return oracle.run_trials(raw_trial, count)


def test_power_cuts():
    """>= 1,000 seeded power cuts inside programs and erases: every record
    whose append returned comes back in order exactly once, nothing
    acknowledged (with its cursor written) comes back, ids are never
    reused, evictions carry notices, and the journal keeps working."""
    totals, found = run_trials(TRIALS)
    cuts = oracle.clean_cuts(totals, found)
    assert cuts >= 1000, totals
    assert totals["erase_cuts"] >= 100 and totals["second_cuts"] and totals["evictions"] and totals["notices"], totals
    return ("raw journal on NOR flash: %d power cuts in %d trials (%d inside an erase, %d inside a program, "
            "%d in the first operations after a boot), %d boots checked, %d appends returned, %d evictions, "
            "%d notices read; 0 records lost, 0 ids reused, 0 programs over unerased cells"
            % (cuts, TRIALS, totals["erase_cuts"], totals["program_cuts"], totals["second_cuts"],
               totals["boots"], totals["appends"], totals["evictions"], totals["notices"]))


def test_power_cut_trials_catch_appending_behind_garbage():
    """The trials bite: a journal that trusts cells it did not check (any
    sector without a record at its start taken as erased, a torn record's
    sector appended to after it) must be caught losing records."""
    real = RawJournal._erased_from
    RawJournal._erased_from = lambda self, sec, pos: True
    try:
        totals, found = run_trials(60)
    finally:
        RawJournal._erased_from = real
    lost = len(found.get("lost", ()))
    assert lost > 0, (totals, list(found))
    return "power-cut trials with erased cells taken on trust: %d lost records, %d overwrites in 60 trials" % (
        lost, totals["overwrites"])
