"""An emulated ZFM / R30x / AS608 fingerprint module on a pty: the agent (or
any ZFM client, e.g. the `pyfingerprint` library over pyserial) opens the
pty's slave path as it would /dev/serial0 and talks the real packet
protocol. Fingers are simulated: tests and the CLI place and lift them.

`doorlink emulate reader` (host_tools/emulate.py) runs one from the command line.
"""

from __future__ import annotations

import os
import random
import select
import threading
import time
import tty

from agent.codecs import zfm

SYSTEM_ID = 0x0009
PACKET_SIZE_CODE = 2  # 128-byte data packets
BAUD = 57600
_UNKNOWN_BASE = 1 << 20  # finger ids handed to never-enrolled visitors


class ReaderEmulator:
    """One module. Templates are simulated by the finger id they were taken
    from: a search matches when the ids agree, as a real matcher would for
    two good captures of the same finger."""

    def __init__(self, library_size: int = 300, seed: int = 0, address: int = zfm.DEFAULT_ADDRESS,
                 password: int = 0) -> None:
        self.library_size = library_size
        self.address = address
        self.password = password
        self.security_level = 3
        self.library: dict[int, int] = {}      # page -> finger id
        self.image: int | str | None = None    # finger id | "smudged" | None
        self.char: dict[int, int | str | None] = {1: None, 2: None}
        self._finger: int | str | None = None  # what lies on the sensor now
        self._rand = random.Random(seed)
        self._unknown = 0
        self._noise = 0
        self._corrupt = False
        self._silent = 0
        self._reject: int | None = None
        # (command code, confirmation) answered, or (code, None) ignored
        self.history: list[tuple[int, int | None]] = []
        self.changed = threading.Condition(threading.RLock())
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.master: int | None = None
        self.slave: int | None = None
        self.path: str | None = None

    # -- the physical world ---------------------------------------------------
    def place(self, finger_id: int) -> None:
        with self._lock:
            self._finger = finger_id

    def place_unknown(self) -> None:
        with self._lock:
            self._unknown += 1
            self._finger = _UNKNOWN_BASE + self._unknown

    def place_smudged(self) -> None:
        with self._lock:
            self._finger = "smudged"

    def lift(self) -> None:
        with self._lock:
            self._finger = None

    def enroll(self, finger_id: int, page: int | None = None) -> None:
        """Pre-load a template of finger_id (at page finger_id by default)."""
        with self._lock:
            self.library[finger_id if page is None else page] = finger_id

    def templates(self) -> dict[int, int]:
        """{page: finger id} of the library, a copy."""
        with self._lock:
            return dict(self.library)

    # -- fault injection -------------------------------------------------------
    def noise(self, n: int) -> None:
        """n random bytes on the line before the next reply."""
        with self._lock:
            self._noise += n

    def corrupt_next_checksum(self) -> None:
        with self._lock:
            self._corrupt = True

    def silent(self, n: int = 1) -> None:
        """Ignore the next n commands (a module still booting, a cut wire)."""
        with self._lock:
            self._silent += n

    def reject_next(self, code: int) -> None:
        """Answer the next command with this confirmation code."""
        with self._lock:
            self._reject = code

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> ReaderEmulator:
        self.master, self.slave = os.openpty()
        # raw on both ends: no echo, no CR/LF translation, 8-bit clean
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self._thread = threading.Thread(target=self._serve, name="zfm-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self.master, self.slave):
            if fd is not None:
                os.close(fd)
        self.master = self.slave = None

    def __enter__(self) -> ReaderEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answered(self, code: int, confirm: int | None = None) -> int:
        """How many commands `code` were answered (with `confirm`, if given)."""
        with self.changed:
            return sum(1 for c, r in self.history
                       if c == code and r is not None and confirm in (None, r))

    def wait_answered(self, code: int, count: int = 1, timeout: float = 5.0, confirm: int | None = None) -> None:
        """Block until `count` commands `code` have been answered (tests use
        it to lift the finger exactly when a client has read it)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.answered(code, confirm) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"command 0x{code:02x} not answered {count} times within {timeout:.1f}s")
                self.changed.wait(left)

    def _serve(self) -> None:
        parser = zfm.Parser()
        # The emulator holds the slave open too, so a client closing and
        # reopening the path never sees a hung-up line.
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                time.sleep(0.02)
                continue
            parser.feed(data)
            for address, pid, payload in parser.packets():
                if address != self.address or pid != zfm.CMD or not payload:
                    continue  # real modules answer only commands for their address
                reply = self._answer(payload)
                if reply is not None:
                    os.write(self.master, reply)
            if parser.bad_checksum:
                # a real module answers a garbled command with 0x01
                parser.bad_checksum = 0
                os.write(self.master, zfm.ack(zfm.PACKET_ERROR, address=self.address))

    def _answer(self, payload: bytes) -> bytes | None:
        code, params = payload[0], payload[1:]
        with self._lock:
            if self._silent:
                self._silent -= 1
                self._note(code, None)
                return None
            if self._reject is not None:
                confirm, data = self._reject, b""
                self._reject = None
            else:
                try:
                    confirm, data = self._run(code, params)
                except IndexError:  # parameters missing
                    confirm, data = zfm.PACKET_ERROR, b""
            out = zfm.ack(confirm, data, self.address)
            if self._corrupt:
                self._corrupt = False
                out = out[:-1] + bytes(((out[-1] + 1) & 0xFF,))
            if self._noise:
                out = bytes(self._rand.randrange(256) for _ in range(self._noise)) + out
                self._noise = 0
            self._note(code, confirm)
            return out

    def _note(self, code: int, confirm: int | None) -> None:
        with self.changed:
            self.history.append((code, confirm))
            self.changed.notify_all()

    # -- the module's instruction set ----------------------------------------
    def _run(self, code: int, p: bytes) -> tuple[int, bytes]:
        handler = _HANDLERS.get(code)
        if handler is None:
            return zfm.PACKET_ERROR, b""
        return handler(self, p)

    def _vfy_pwd(self, p: bytes) -> tuple[int, bytes]:
        if len(p) < 4:
            raise IndexError
        pw = int.from_bytes(p[0:4], "big")
        return (zfm.OK if pw == self.password else zfm.WRONG_PASSWORD), b""

    def _read_sys_para(self, p: bytes) -> tuple[int, bytes]:
        return zfm.OK, (zfm.u16(0) + zfm.u16(SYSTEM_ID) + zfm.u16(self.library_size)
                        + zfm.u16(self.security_level) + zfm.u32(self.address)
                        + zfm.u16(PACKET_SIZE_CODE) + zfm.u16(BAUD // 9600))

    def _template_num(self, p: bytes) -> tuple[int, bytes]:
        return zfm.OK, zfm.u16(len(self.library))

    def _gen_img(self, p: bytes) -> tuple[int, bytes]:
        if self._finger is None:
            return zfm.NO_FINGER, b""
        self.image = self._finger
        return zfm.OK, b""

    def _img2tz(self, p: bytes) -> tuple[int, bytes]:
        buf = p[0]
        if buf not in (1, 2):
            return zfm.PACKET_ERROR, b""
        if self.image is None:
            return zfm.INVALID_IMAGE, b""
        if self.image == "smudged":
            return zfm.TOO_MESSY, b""
        self.char[buf] = self.image
        return zfm.OK, b""

    def _match(self, p: bytes) -> tuple[int, bytes]:
        a, b = self.char[1], self.char[2]
        if a is not None and a == b:
            return zfm.OK, zfm.u16(self._score())
        return zfm.NO_MATCH, zfm.u16(0)

    def _search(self, p: bytes) -> tuple[int, bytes]:
        buf, start, count = p[0], _u16(p, 1), _u16(p, 3)
        finger = self.char.get(buf)
        if finger is None:
            return zfm.NOT_FOUND, zfm.u16(0) + zfm.u16(0)
        for page in sorted(self.library):
            if start <= page < start + count and self.library[page] == finger:
                return zfm.OK, zfm.u16(page) + zfm.u16(self._score())
        return zfm.NOT_FOUND, zfm.u16(0) + zfm.u16(0)

    def _reg_model(self, p: bytes) -> tuple[int, bytes]:
        a, b = self.char[1], self.char[2]
        if a is None or a != b:
            return zfm.ENROL_MISMATCH, b""
        return zfm.OK, b""  # the model lands in both char buffers

    def _store(self, p: bytes) -> tuple[int, bytes]:
        buf, page = p[0], _u16(p, 1)
        if page >= self.library_size:
            return zfm.BAD_PAGE, b""
        if self.char.get(buf) is None:
            return zfm.READ_ERROR, b""
        self.library[page] = self.char[buf]
        return zfm.OK, b""

    def _load_char(self, p: bytes) -> tuple[int, bytes]:
        buf, page = p[0], _u16(p, 1)
        if page >= self.library_size:
            return zfm.BAD_PAGE, b""
        if page not in self.library:
            return zfm.READ_ERROR, b""
        self.char[buf] = self.library[page]
        return zfm.OK, b""

    def _delete_char(self, p: bytes) -> tuple[int, bytes]:
        page, count = _u16(p, 0), _u16(p, 2)
        if page + count > self.library_size:
            return zfm.DELETE_FAILED, b""
        for n in range(page, page + count):
            self.library.pop(n, None)
        return zfm.OK, b""

    def _empty(self, p: bytes) -> tuple[int, bytes]:
        self.library.clear()
        return zfm.OK, b""

    def _read_index_table(self, p: bytes) -> tuple[int, bytes]:
        table = p[0]
        bits = bytearray(32)
        for page in self.library:
            if table * 256 <= page < (table + 1) * 256:
                n = page - table * 256
                bits[n // 8] |= 1 << (n % 8)
        return zfm.OK, bytes(bits)

    def _get_random(self, p: bytes) -> tuple[int, bytes]:
        return zfm.OK, zfm.u32(self._rand.getrandbits(32))

    def _set_sys_para(self, p: bytes) -> tuple[int, bytes]:
        reg, value = p[0], p[1]
        if reg == 5 and 1 <= value <= 5:
            self.security_level = value
            return zfm.OK, b""
        if reg in (4, 6):
            return zfm.OK, b""  # baud / packet size: the pty does not care
        return zfm.INVALID_REGISTER, b""

    def _ok(self, p: bytes) -> tuple[int, bytes]:
        return zfm.OK, b""

    def _score(self) -> int:
        return self._rand.randrange(60, 250)


def _u16(p: bytes, i: int) -> int:
    if len(p) < i + 2:
        raise IndexError
    return (p[i] << 8) | p[i + 1]


_HANDLERS = {
    zfm.VFY_PWD: ReaderEmulator._vfy_pwd,
    zfm.READ_SYS_PARA: ReaderEmulator._read_sys_para,
    zfm.TEMPLATE_NUM: ReaderEmulator._template_num,
    zfm.GEN_IMG: ReaderEmulator._gen_img,
    zfm.IMG2TZ: ReaderEmulator._img2tz,
    zfm.MATCH: ReaderEmulator._match,
    zfm.SEARCH: ReaderEmulator._search,
    zfm.HIGH_SPEED_SEARCH: ReaderEmulator._search,
    zfm.REG_MODEL: ReaderEmulator._reg_model,
    zfm.STORE: ReaderEmulator._store,
    zfm.LOAD_CHAR: ReaderEmulator._load_char,
    zfm.DELETE_CHAR: ReaderEmulator._delete_char,
    zfm.EMPTY: ReaderEmulator._empty,
    zfm.READ_INDEX_TABLE: ReaderEmulator._read_index_table,
    zfm.GET_RANDOM: ReaderEmulator._get_random,
    zfm.SET_SYS_PARA: ReaderEmulator._set_sys_para,
    zfm.HANDSHAKE: ReaderEmulator._ok,
    zfm.SOFT_RESET: ReaderEmulator._ok,
    zfm.AURA_LED: ReaderEmulator._ok,
}
