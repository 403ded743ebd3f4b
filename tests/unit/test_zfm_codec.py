# The ZFM fingerprint packet codec (agent/codecs/zfm.py), on both runtimes.
from agent.codecs import zfm


def _all(parser, data=b""):
    parser.feed(data)
    return list(parser.packets())


def test_encode_matches_the_datasheet_example():
    # GenImg as every ZFM datasheet prints it
    assert zfm.command(zfm.GEN_IMG) == bytes.fromhex("EF01FFFFFFFF010003010005")
    # VfyPwd with password 0
    assert zfm.command(zfm.VFY_PWD, zfm.u32(0)) == bytes.fromhex("EF01FFFFFFFF0100071300000000001B")


def test_checksum_is_sixteen_bit_sum():
    payload = bytes([0xFF] * 256)
    pkt = zfm.encode(zfm.DATA, payload, address=0x12345678)
    assert pkt[2:6] == bytes((0x12, 0x34, 0x56, 0x78))
    assert pkt[7:9] == bytes((0x01, 0x02))
    s = (zfm.DATA + 0x01 + 0x02 + 0xFF * 256) & 0xFFFF
    assert pkt[-2:] == bytes((s >> 8, s & 0xFF))


def test_round_trip():
    p = zfm.Parser()
    pkts = [zfm.ack(zfm.OK, zfm.u16(7) + zfm.u16(120)),
            zfm.command(zfm.SEARCH, b"\x01", zfm.u16(0), zfm.u16(300), address=1),
            zfm.encode(zfm.END, b"")]
    got = _all(p, b"".join(pkts))
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x00\x00\x07\x00\x78"),
                   (1, zfm.CMD, b"\x04\x01\x00\x00\x01\x2c"),
                   (0xFFFFFFFF, zfm.END, b"")]
    assert p.bad_checksum == 0 and p.garbage_bytes == 0


def test_resync_after_garbage():
    p = zfm.Parser()
    pkt = zfm.ack(zfm.NO_FINGER)
    got = _all(p, b"\x00\x55\xef\xfe\xef" + pkt + b"junk" + pkt)
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x02")] * 2
    assert p.garbage_bytes == 9


def test_wrong_checksum_is_counted_and_skipped():
    p = zfm.Parser()
    bad = bytearray(zfm.ack(zfm.OK))
    bad[-1] ^= 0x01
    good = zfm.ack(zfm.NOT_FOUND)
    got = _all(p, bytes(bad) + good)
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x09")]
    assert p.bad_checksum == 1
    assert p.garbage_bytes == len(bad)


def test_split_feeds_byte_by_byte():
    p = zfm.Parser()
    stream = zfm.ack(zfm.OK, zfm.u16(3)) + b"\xef" + zfm.ack(zfm.OK)
    got = []
    for b in stream:
        got += _all(p, bytes((b,)))
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x00\x00\x03"), (0xFFFFFFFF, zfm.ACK, b"\x00")]
    assert p.garbage_bytes == 1


def test_absurd_length_resyncs():
    p = zfm.Parser()
    absurd = b"\xef\x01\xff\xff\xff\xff\x07\x7f\xff"  # 32 KB claimed
    short = b"\xef\x01\xff\xff\xff\xff\x07\x00\x01"   # shorter than its own checksum
    good = zfm.ack(zfm.OK)
    got = _all(p, absurd + short + good)
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x00")]
    assert p.garbage_bytes == len(absurd) + len(short)


def test_unknown_packet_id_is_garbage():
    p = zfm.Parser()
    good = zfm.ack(zfm.OK)
    got = _all(p, b"\xef\x01\xff\xff\xff\xff\x55\x00\x03" + good)
    assert got == [(0xFFFFFFFF, zfm.ACK, b"\x00")]


def test_incomplete_packet_waits():
    p = zfm.Parser()
    pkt = zfm.ack(zfm.OK, b"\x01\x02")
    assert _all(p, pkt[:-1]) == []
    assert _all(p, pkt[-1:]) == [(0xFFFFFFFF, zfm.ACK, b"\x00\x01\x02")]
    assert p.garbage_bytes == 0


def test_confirm_text():
    assert "messy" in zfm.confirm_text(zfm.TOO_MESSY)
    assert zfm.confirm_text(0x77) == "module error 0x77"
