# The console's last lines, kept for the log_tail command: bounded by lines
# and bytes, numbered for the life of the process, with what fell out
# counted; what the cloud asks with is checked before the ring is read.
from agent import log, log_ring
from agent.errors import CommandError
from agent.log_ring import ANSWER_BYTES, LINE_MAX, LogRing
from agent.thing import Thing

from support import araises


def _texts(answer):
    return [text for _, text in answer["lines"]]


def test_lines_are_numbered_from_one_and_read_after_a_number():
    ring = LogRing()
    for i in range(5):
        ring.add("line %d" % i)
    got = ring.tail(0)
    assert got["lines"] == [[1, "line 0"], [2, "line 1"], [3, "line 2"], [4, "line 3"], [5, "line 4"]]
    assert got["next"] == 5 and got["dropped"] == 0 and not got["more"]
    later = ring.tail(3)
    assert _texts(later) == ["line 3", "line 4"] and later["next"] == 5
    # Nothing new: the same `next`, no lines.
    idle = ring.tail(5)
    assert idle["lines"] == [] and idle["next"] == 5 and idle["dropped"] == 0


def test_the_ring_keeps_the_newest_lines_within_its_line_bound_and_counts_the_rest():
    ring = LogRing(max_lines=4)
    for i in range(10):
        ring.add("l%d" % i)
    got = ring.tail(0)
    assert got["lines"] == [[7, "l6"], [8, "l7"], [9, "l8"], [10, "l9"]]
    assert got["dropped"] == 6
    # A reader that had seen up to 7 lost nothing.
    assert ring.tail(7)["dropped"] == 0 and _texts(ring.tail(7)) == ["l7", "l8", "l9"]
    assert ring.tail(4)["dropped"] == 2


def test_the_byte_bound_holds_whatever_the_lines_hold():
    ring = LogRing(max_lines=1000, max_bytes=4 * LINE_MAX)
    for i in range(200):
        ring.add(("%d " % i) + "x" * 100)
    kept = ring.tail(0, 50)["lines"]
    assert sum(len(t.encode()) for _, t in kept) <= 4 * LINE_MAX
    assert kept[-1][0] == 200 and len(kept) == 4 * LINE_MAX // 104
    # Multi-byte text counts its UTF-8 bytes, and an over-long line is cut.
    ring.add("é" * 5000)
    last = ring.tail(199)["lines"]
    assert last[-1] == [201, "é" * LINE_MAX]
    assert sum(len(t.encode()) for _, t in ring.tail(0, 50)["lines"]) <= 4 * LINE_MAX


def test_lines_of_any_length_and_script_come_back_whole_as_the_ring_wraps():
    # One buffer holds the ring: lines cross its end again and again. What
    # comes back is what was added, checked against a plain list.
    ring = LogRing(max_lines=7, max_bytes=4 * LINE_MAX)
    kept = []
    words = ("a", "€uro", "日本語のログ", "z" * 300, "", "mixed é€ \u2603 end")
    for i in range(400):
        text = "%d %s" % (i, words[i % len(words)] * (1 + i % 5))
        ring.add(text)
        kept.append(text[:LINE_MAX])
        while len(kept) > 7 or sum(len(t.encode()) for t in kept) > 4 * LINE_MAX:
            kept.pop(0)
        if i % 37 == 0 or i > 390:
            assert ring.last(10) == kept and len(ring) == len(kept), i
            got = ring.tail(ring.newest() - len(kept), 50)
            assert _texts(got) == kept and got["lines"][-1][0] == i + 1
    ring.clear()
    assert ring.last(5) == [] and ring.tail(0)["lines"] == [] and ring.newest() == 400
    ring.add("after clear")
    assert ring.tail(400)["lines"] == [[401, "after clear"]]


def test_an_answer_holds_at_most_max_lines_and_answer_bytes_and_says_more_are_left():
    ring = LogRing(max_lines=40, max_bytes=8192)
    for i in range(40):
        ring.add("%03d " % i + "y" * 196)
    first = ring.tail(0, 3)
    assert [n for n, _ in first["lines"]] == [1, 2, 3] and first["more"] and first["next"] == 3
    big = ring.tail(0, 50)
    assert len(big["lines"]) == ANSWER_BYTES // 200 and big["more"]
    # Asking on from `next` reads everything, once, in order.
    seen, after = [], 0
    for _ in range(20):
        got = ring.tail(after, 50)
        seen += [n for n, _ in got["lines"]]
        after = got["next"]
        if not got["more"]:
            break
    assert seen == list(range(1, 41))


def test_a_reader_ahead_of_the_ring_gets_nothing_and_the_newest_number():
    # It read a previous boot's numbers: the boot id tells it; nothing here is "dropped".
    ring = LogRing()
    ring.add("a")
    got = ring.tail(500)
    assert got["lines"] == [] and got["next"] == 1 and got["dropped"] == 0
    assert got["boot"] == ring.boot and ring.boot > 0


def test_a_reader_far_ahead_costs_no_walk_over_the_ring():
    # `after` goes up to 2**40 (a hostile cloud; a follower still on the
    # numbers of the boot before): answered at once, with no step through
    # the buffer (a walk of `after` steps would hold the event loop for days).
    class Counting(LogRing):
        steps = 0

        def _size(self, at):
            Counting.steps += 1
            return LogRing._size(self, at)

    ring = Counting(max_lines=8)
    for i in range(20):
        ring.add("l%d" % i)
    for after in (21, 1000, 20, 1 << 40):   # a walk would show at 1000, before 2**40 hangs
        Counting.steps = 0
        got = ring.tail(after)
        assert got["lines"] == [] and got["next"] == 20 and not got["more"], (after, got)
        assert Counting.steps == 0, (after, Counting.steps)
    # A reader within the ring steps only over the lines it is given and
    # those before them.
    Counting.steps = 0
    assert _texts(ring.tail(17, 2)) == ["l17", "l18"] and Counting.steps <= 8 + 2


def test_every_process_has_its_own_boot_id():
    assert len({LogRing().boot for _ in range(8)}) > 1


def test_what_the_console_shows_is_kept_at_its_level():
    log.set_level("warn")
    try:
        before = log.ring.newest()
        log.info("test", "not shown, not kept")
        log.warn("test", "shown and kept")
        got = log.ring.tail(before)
        assert len(got["lines"]) == 1 and got["lines"][0][1].endswith("WARN  test: shown and kept")
    finally:
        log.set_level("info")


def test_a_peers_lone_surrogate_is_logged_not_raised():
    # CPython's json.loads makes a str holding half a UTF-16 pair, which no
    # console encoding takes: a cloud's error message quoted in a warning
    # must not end the link (MicroPython keeps such text as bytes anyway).
    import json
    text = json.loads('"bad \\ud800 half"')
    before = log.ring.newest()
    log.warn("test", "server says %s" % text)
    got = log.ring.tail(before)["lines"]
    assert len(got) == 1 and "server says bad" in got[0][1] and got[0][1].endswith("half"), got


def _thing(ring):
    thing = Thing("dev")
    log_ring.register(thing, ring)
    return thing


async def test_log_tail_is_a_command_and_hostile_payloads_get_a_clear_error():
    ring = LogRing()
    ring.add("hello")
    thing = _thing(ring)
    got = await thing.call("log_tail", {})
    assert got["lines"] == [[1, "hello"]]
    assert (await thing.call("log_tail", {"after": 1, "max": 5}))["lines"] == []
    for payload, word in (({"after": -1}, "after"), ({"after": "0"}, "after"), ({"after": 1.5}, "after"),
                          ({"after": True}, "after"), ({"after": 1 << 60}, "after"), ({"max": 0}, "max"),
                          ({"max": 51}, "max"), ({"max": 10 ** 30}, "max"), ({"max": None}, "max"),
                          ({"lines": 3}, "lines")):
        e = await araises(CommandError, thing.call("log_tail", payload))
        assert "'%s'" % word in str(e), (payload, str(e))
    e = await araises(CommandError, thing.call("log_tail", [1, 2]))
    assert "must be an object" in str(e)



def test_cloudsolution_carries_log_tail_as_its_logtail_word_and_its_lines():
    from agent.codecs import cloudsolution as cs
    obj = cs.command_request("log_tail", {"after": 7, "max": 5})
    assert obj == {"cmd": "logtail", "after": 7, "max": 5}
    cmd = cs.server_command(obj)
    assert cmd.name == "log_tail" and cmd.payload == {"after": 7, "max": 5}
    # Fields go as they are for the Thing to judge (above); no other field rides along.
    assert cs.server_command({"cmd": "logtail", "after": "x", "evil": 1}).payload == {"after": "x"}
    s = cs.Session("SN1")
    s.hello()
    assert s.reply("reg", {"ret": "reg", "result": True}).ok
    ring = LogRing()
    ring.add("hello")
    answer = s.command_result(cmd.id, "log_tail", True, ring.tail(0))
    assert answer["ret"] == "logtail" and answer["result"] is True
    assert answer["lines"] == [[1, "hello"]] and answer["boot"] == ring.boot and answer["dropped"] == 0
