# ZhianTec ZFM / R30x / R503 / AS608 fingerprint module packets (sans-IO).
#   EF 01 | address (4) | packet id (1) | length (2, = payload + 2) | payload | checksum (2)
# checksum = 16-bit sum of packet id, both length bytes and the payload; all
# fields big-endian. The same codec serves the agent's driver and the host's
# module emulator, so both sides agree byte for byte.

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
MAX_PAYLOAD = 256  # the largest data packet a module sends (packet size code 3)

# packet ids
CMD = 0x01
DATA = 0x02
ACK = 0x07
END = 0x08
_PIDS = (CMD, DATA, ACK, END)

# command codes
GEN_IMG = 0x01
IMG2TZ = 0x02
MATCH = 0x03
SEARCH = 0x04
REG_MODEL = 0x05
STORE = 0x06
LOAD_CHAR = 0x07
UP_CHAR = 0x08
DOWN_CHAR = 0x09
UP_IMAGE = 0x0A
DELETE_CHAR = 0x0C
EMPTY = 0x0D
SET_SYS_PARA = 0x0E
READ_SYS_PARA = 0x0F
VFY_PWD = 0x13
GET_RANDOM = 0x14
HIGH_SPEED_SEARCH = 0x1B
TEMPLATE_NUM = 0x1D
READ_INDEX_TABLE = 0x1F
AURA_LED = 0x35
SOFT_RESET = 0x3D
HANDSHAKE = 0x53

# confirmation codes (first payload byte of an ACK packet)
OK = 0x00
PACKET_ERROR = 0x01
NO_FINGER = 0x02
IMAGE_FAILED = 0x03
TOO_MESSY = 0x06
TOO_FEW_FEATURES = 0x07
NO_MATCH = 0x08
NOT_FOUND = 0x09
ENROL_MISMATCH = 0x0A
BAD_PAGE = 0x0B
READ_ERROR = 0x0C
DELETE_FAILED = 0x10
CLEAR_FAILED = 0x11
WRONG_PASSWORD = 0x13
INVALID_IMAGE = 0x15
FLASH_ERROR = 0x18
INVALID_REGISTER = 0x1A

CONFIRM_TEXT = {
    OK: "ok",
    PACKET_ERROR: "the module could not receive the packet",
    NO_FINGER: "no finger on the sensor",
    IMAGE_FAILED: "the finger image could not be captured",
    TOO_MESSY: "the finger image is too messy (dirty or wet finger?)",
    TOO_FEW_FEATURES: "the finger image has too few features (press the whole fingertip)",
    NO_MATCH: "the fingers do not match",
    NOT_FOUND: "no matching finger in the library",
    ENROL_MISMATCH: "the two captures are not the same finger",
    BAD_PAGE: "page number outside the finger library",
    READ_ERROR: "the template could not be read from the library",
    DELETE_FAILED: "the template could not be deleted",
    CLEAR_FAILED: "the finger library could not be cleared",
    WRONG_PASSWORD: "wrong module password",
    INVALID_IMAGE: "no valid image in the image buffer",
    FLASH_ERROR: "the module's flash could not be written",
    INVALID_REGISTER: "invalid register number",
}


def confirm_text(code):
    return CONFIRM_TEXT.get(code, "module error 0x%02x" % code)


def u16(n):
    return bytes(((n >> 8) & 0xFF, n & 0xFF))


def u32(n):
    return bytes(((n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF))


def _sum(pid, n, payload):
    s = pid + (n >> 8) + (n & 0xFF)
    for b in payload:
        s += b
    return s & 0xFFFF


def encode(pid, payload=b"", address=DEFAULT_ADDRESS):
    n = len(payload) + 2
    return (HEADER + u32(address) + bytes((pid, n >> 8, n & 0xFF)) + bytes(payload)
            + u16(_sum(pid, n, payload)))


def command(code, *params, address=DEFAULT_ADDRESS):
    """A command packet: the instruction code then its parameter bytes."""
    return encode(CMD, bytes((code,)) + b"".join(params), address)


def ack(confirm, data=b"", address=DEFAULT_ADDRESS):
    return encode(ACK, bytes((confirm,)) + data, address)


class Parser:
    """Bytes in, (address, pid, payload) out. Anything that is not a whole,
    valid packet is skipped up to the next EF 01: wrong baud rates, a boot
    console on the UART and noisy adapters all produce such garbage."""
    __slots__ = ("_buf", "bad_checksum", "garbage_bytes")

    def __init__(self):
        self._buf = bytearray()
        self.bad_checksum = 0
        self.garbage_bytes = 0

    def feed(self, data):
        self._buf.extend(data)

    def clear(self):
        self._buf = bytearray()

    def _skip(self, n):
        self.garbage_bytes += n
        self._buf = self._buf[n:]

    def packets(self):
        while True:
            buf = self._buf
            start = buf.find(HEADER)
            if start < 0:
                # keep a trailing EF: it may be the first half of a header
                keep = 1 if buf[-1:] == b"\xef" else 0
                if len(buf) > keep:
                    self._skip(len(buf) - keep)
                return
            if start:
                self._skip(start)
                buf = self._buf
            if len(buf) < 9:
                return
            pid = buf[6]
            n = (buf[7] << 8) | buf[8]
            if pid not in _PIDS or n < 2 or n > MAX_PAYLOAD + 2:
                self._skip(2)  # a false header inside garbage
                continue
            if len(buf) < 9 + n:
                return
            payload = bytes(buf[9:7 + n])
            if (buf[7 + n] << 8 | buf[8 + n]) != _sum(pid, n, payload):
                self.bad_checksum += 1
                self._skip(2)
                continue
            address = (buf[2] << 24) | (buf[3] << 16) | (buf[4] << 8) | buf[5]
            self._buf = buf[9 + n:]
            yield address, pid, payload
