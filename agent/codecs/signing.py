# Signed management requests (the cloud-control channel, site
# `control.key`): HMAC-SHA256 over the device's id, the request's type,
# time stamp, nonce and canonical body, checked against the device's clock
# and a bounded cache of nonces. Pure: the caller passes the clock's value.
# The device id is signed so that a request for one door cannot be
# replayed to another that shares its key (a fleet keyed alike).
#
# MicroPython has hashlib.sha256 but no `hmac` module, and its json.dumps
# neither sorts keys nor escapes non-ASCII: both are written here, once,
# and cross-checked in tests against CPython's hmac and
# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True).
#
# A device whose clock cannot be believed (before 2020: an ESP32 after a
# power cut, before NTP or a cloud set it) refuses every signed request
# with "clock not set". Taking them would be worse than a locked-out
# manager: the nonce cache lives in RAM, so after each reboot any request
# ever recorded could be replayed, and the time stamp is then the only
# thing that stops it. A host's clock (a Pi's, set by the OS) is believed.
#
# Replays are stopped by a FLOOR as well as by the nonces: a request signed
# before it is refused, and a nonce is forgotten only once its ts is below
# it, so a request is never both acceptable and forgotten. The floor starts
# at the device's clock when the agent starts (the channel sets it; the
# nonces of the previous boot are gone, and a request recorded then is
# older) and rises with the clock, SKEW_S behind it, at each request taken;
# it never goes down, so setting the clock back (a cloud's set_time, a
# hostile uplink's) brings no recorded request back to life. The price: a
# clock set back by more than SKEW_S refuses signed requests until it has
# caught up again, and a server whose clock is behind the device's is
# refused for that long after the agent starts.
#
# Replies are signed too, so that a man in the middle of a ws:// link cannot
# put words in the device's mouth (a file's content, a state, "done"): the
# reply's text as sent, then REPLY_TAIL appended inside its object - the
# request's nonce (`re`) and an HMAC over the device id, "reply", that nonce
# and the text before the tail. The bytes are signed, not a canonical form,
# so a reply may hold floats; "reply" where a request has its ts keeps a
# request's signature from passing for a reply's. Bound to its request's
# nonce, a reply cannot be replayed as the answer to another request. Only
# a request the device took gets a signed reply: a refusal (a bad
# signature, a replay, a stale ts) goes unsigned, since signing it would
# let a man in the middle collect, with a tampered copy of a request, a
# signed "refused" under that request's nonce, then deliver the original
# and drop the real answer.
import binascii
import hashlib

from agent.codecs.ints import is_int

BLOCK = 64           # SHA-256 block size (RFC 2104's B)
SKEW_S = 60          # |ts - device clock| accepted
NONCE_KEEP_S = 2 * SKEW_S   # a nonce is kept at least this long (while its ts can pass)
MAX_NONCES = 64      # nonces remembered at once; past that, refuse rather than forget
NONCE_LEN = (16, 64)
HEX = "0123456789abcdef"
KEY_MIN = 16
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def hmac_sha256(key, msg):
    """RFC 2104 HMAC-SHA256 of bytes `msg` under bytes `key` -> lowercase hex."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + bytes(BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return binascii.hexlify(outer.digest()).decode()


def _string(s, out):
    out.append('"')
    start = 0
    for i, c in enumerate(s):
        o = ord(c)
        if 0x20 <= o <= 0x7E and c != '"' and c != "\\":
            continue
        if start < i:
            out.append(s[start:i])
        start = i + 1
        if c in _SHORT:
            out.append(_SHORT[c])
        elif o > 0xFFFF:
            o -= 0x10000   # a UTF-16 surrogate pair, as ensure_ascii writes it
            out.append("\\u%04x\\u%04x" % (0xD800 | (o >> 10), 0xDC00 | (o & 0x3FF)))
        else:
            out.append("\\u%04x" % o)
    out.append(s[start:] if start else s)
    out.append('"')


def _order(k):
    # MicroPython's json keeps an escaped astral character ("\ud83d\ude00")
    # as its two surrogates, which sort before U+E000-U+FFFF; CPython's
    # makes it one code point, which sorts after them. Keys sort as CPython
    # sorts them, or a key like that broke the signature on a board.
    for c in k:
        if 0xD800 <= ord(c) <= 0xDFFF:
            break
    else:
        return k
    out, i, n = [], 0, len(k)
    while i < n:
        o = ord(k[i])
        if 0xD800 <= o < 0xDC00 and i + 1 < n and 0xDC00 <= ord(k[i + 1]) <= 0xDFFF:
            out.append(chr(0x10000 + ((o - 0xD800) << 10) + ord(k[i + 1]) - 0xDC00))
            i += 2
        else:
            out.append(k[i])
            i += 1
    return "".join(out)


def _canon(v, out):
    # A parsed request is already depth-checked (agent/codecs/control.py).
    if v is None:
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif is_int(v):
        out.append(str(v))
    elif isinstance(v, str):
        _string(v, out)
    elif isinstance(v, list):
        out.append("[")
        for i, x in enumerate(v):
            if i:
                out.append(",")
            _canon(x, out)
        out.append("]")
    elif isinstance(v, dict):
        out.append("{")
        for i, k in enumerate(sorted(v, key=_order)):
            if i:
                out.append(",")
            _string(k, out)
            out.append(":")
            _canon(v[k], out)
        out.append("}")
    elif isinstance(v, float):
        # "1.0", "1e0" and "1" are the same number to JSON and not the same
        # text on both runtimes: no canonical form, so no signature.
        raise ValueError("float in signed body")
    else:
        raise ValueError("value of type %s in signed body" % type(v).__name__)


def canon(v):
    """The canonical JSON text of a parsed value: keys sorted, no spaces,
    non-ASCII as \\uXXXX; ValueError for a float."""
    out = []
    _canon(v, out)
    return "".join(out)


def signed_text(device, req_type, ts, nonce, body):
    """What a request's signature covers (canon(absent body) is "null")."""
    return "%s\n%s\n%d\n%s\n%s" % (device, req_type, ts, nonce, canon(body))


def sign(key, device, req_type, ts, nonce, body=None):
    """The signature a control server puts in `sig` for the device with
    id `device` (tests, bench tools)."""
    return hmac_sha256(key.encode(), signed_text(device, req_type, ts, nonce, body).encode())


REPLY_RE, REPLY_SIG = ', "re": "', '", "sig": "'
REPLY_TAIL = REPLY_RE + "%s" + REPLY_SIG + '%s"}'


def reply_text(device, nonce, text):
    """What a signed reply's signature covers: `text` is the reply as
    sent, before its tail."""
    return "%s\nreply\n%s\n%s" % (device, nonce, text)


def seal_reply(key, device, nonce, text):
    """The reply `text` (a JSON object's text, ending in "}") for the
    request with `nonce`, its tail appended. `key`: bytes."""
    sig = hmac_sha256(key, reply_text(device, nonce, text).encode())
    return text[:-1] + REPLY_TAIL % (nonce, sig)


def open_reply(key, device, nonce, wire):
    """The reply's text before its tail when `wire` is the device's signed
    answer to the request with `nonce`; None otherwise. `key`: str."""
    if not isinstance(nonce, str):
        return None
    head = REPLY_RE + nonce + REPLY_SIG
    n = len(head) + 64 + 2   # the signature, then '"}'
    if len(wire) <= n or not wire.endswith('"}') or wire[-n:-66] != head:
        return None
    text = wire[:-n] + "}"
    want = hmac_sha256(key.encode(), reply_text(device, nonce, text).encode())
    return text if _same(want, wire[-66:-2]) else None


def _same(a, b):
    # Constant time: a wrong signature must not say how much of it was right.
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= ord(a[i]) ^ ord(b[i])
    return diff == 0


def _hex(s, low, high):
    if not isinstance(s, str) or not low <= len(s) <= high:
        return False
    for c in s:
        if c not in HEX:
            return False
    return True


class Verifier:
    """The device's side of signed requests: the key, and the nonces seen
    whose ts is not below the floor (the module's comment)."""
    __slots__ = ("key", "device", "floor", "_nonces")

    def __init__(self, key, device):
        self.key = key.encode()
        self.device = device   # this device's id: what is signed for another is not taken
        self.floor = None    # no request signed before this is taken (None: not known yet)
        self._nonces = {}    # nonce -> its request's ts

    def seal(self, nonce, text):
        """The reply `text` to the request taken with `nonce`, signed."""
        return seal_reply(self.key, self.device, nonce, text)

    def check(self, req_type, msg, now, clock_ok=True):
        """None when the request `msg` (the parsed object) is signed right,
        fresh and new; else why it is refused. `now`: the device's clock
        (unix seconds); `clock_ok`: whether that clock can be believed."""
        ts, nonce, sig = msg.get("ts"), msg.get("nonce"), msg.get("sig")
        if ts is None and nonce is None and sig is None:
            return "unsigned request refused: this device takes only signed requests (ts, nonce, sig)"
        if not is_int(ts):
            return "bad signed request: ts must be unix seconds (an integer)"
        if not _hex(nonce, NONCE_LEN[0], NONCE_LEN[1]):
            return "bad signed request: nonce must be %d to %d characters of [0-9a-f]" % NONCE_LEN
        if not _hex(sig, 64, 64):
            return "bad signed request: sig must be 64 characters of [0-9a-f] (HMAC-SHA256)"
        if not clock_ok:
            return "clock not set: the device cannot tell a fresh signed request from a replayed one"
        if abs(ts - now) > SKEW_S:
            return "stale request: ts is %+d s off the device's clock (at most %d s allowed)" % (ts - now, SKEW_S)
        try:
            text = signed_text(self.device, req_type, ts, nonce, msg.get("body"))
        except ValueError as e:
            return str(e)
        if not _same(hmac_sha256(self.key, text.encode()), sig):
            return "bad signature (signed with another key, or for another device)"
        # Only a correctly signed request moves the floor or reaches the
        # cache: nobody without the key can fill it or lock it.
        floor = self.floor
        if floor is not None and ts < floor:
            return ("old request: ts %d is before %d, the oldest this device takes now (a replay, a request "
                    "from before the agent started, or a clock set back)" % (ts, floor))
        nonces = self._nonces
        if nonce in nonces:
            return "replayed request: nonce already used"
        if floor is None or now - SKEW_S > floor:
            floor = self.floor = now - SKEW_S
        for n in [n for n in nonces if nonces[n] < floor]:
            del nonces[n]   # below the floor: refused by it from now on
        if len(nonces) >= MAX_NONCES:
            return "too many signed requests: at most %d in %d s" % (MAX_NONCES, NONCE_KEEP_S)
        nonces[nonce] = ts
        return None
