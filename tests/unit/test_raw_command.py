# The raw passthrough command (agent/raw.py): base64 in, the same bytes
# back as the "raw" event (a loopback), sizes and alphabet checked first.
from agent import raw
from agent.errors import CommandError
from agent.thing import Thing

from support import araises


def _thing():
    t = Thing("d")
    seen = []
    t.listen(lambda kind, name, value: seen.append((kind, name, value)))
    part = raw.Raw(t)
    return t, seen, part


async def test_loopback_answers_and_emits_the_same_bytes():
    t, seen, _ = _thing()
    data = bytes(range(256))
    text = raw.encode(data)
    assert len(text) == raw.MAX_TEXT
    assert await t.call("raw", {"data": text}) == {"bytes": 256}
    assert seen == [("event", "raw", {"data": text})]
    assert raw.decode(seen[0][2]["data"]) == data


async def test_every_length_round_trips():
    t, seen, _ = _thing()
    for n in (1, 2, 3, 4, 127, 128, 255, 256):
        data = bytes((i * 7 + n) & 0xFF for i in range(n))
        assert await t.call("raw", {"data": raw.encode(data)}) == {"bytes": n}
        assert raw.decode(seen[-1][2]["data"]) == data


async def test_refuses_what_is_not_base64_or_too_long():
    t, seen, _ = _thing()
    for bad in ("", "abc", "ab!=", "a===", "YQ==YQ==x", "YQ= =", 5, None):
        e = await araises(CommandError, t.call("raw", {"data": bad}))
        assert "raw" in str(e) or "data" in str(e)
    # 257 bytes: base64 as long as 256 bytes, refused on its decoded size
    e = await araises(CommandError, t.call("raw", {"data": raw.encode(bytes(257))}))
    assert "256" in str(e)
    await araises(CommandError, t.call("raw", {}))
    assert seen == []


async def test_a_peripheral_takes_it_over():
    t = Thing("d")
    sent = []

    async def send(data):
        sent.append(data)

    seen = []
    t.listen(lambda kind, name, value: seen.append((kind, name, value)))
    part = raw.Raw(t, send)
    assert await t.call("raw", {"data": raw.encode(b"\x01\x02")}) == {"bytes": 2}
    assert sent == [b"\x01\x02"] and seen == []
    assert part.received(b"ok")
    assert seen == [("event", "raw", {"data": "b2s="})]


async def test_an_answer_that_cannot_be_journaled_is_a_failed_command():
    t = Thing("d")
    t.listen(lambda kind, name, value: False)
    raw.Raw(t)
    e = await araises(CommandError, t.call("raw", {"data": "AA=="}))
    assert "journaled" in str(e)
