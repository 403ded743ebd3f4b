# ZFM / R30x / R503 / AS608 fingerprint module: driver, flows (identify,
# enrol, delete) and the reader peripheral that polls for fingers.
# The port is any object with `async write(data)` and `async read(max_n)`
# (at least one byte); the hal opens it (agent/hal/serial_posix.py, serial_uart.py).
import asyncio

from agent import hal, log, records
from agent.backoff import Backoff
from agent.codecs import zfm
from agent.codecs.values import is_int
from agent.errors import CommandError
from agent.thing import INT

TIMEOUT_S = 2.0
# A silent line or a garbled reply is tried this many more times. Resending
# is safe: every ZFM command yields the same state when run twice.
RETRIES = 2
ERROR_BACKOFF_S = (1, 30)  # after a module error: first ceiling, cap (full jitter)
# capture problems: the person should try again, the module is fine
CAPTURE_CODES = (zfm.IMAGE_FAILED, zfm.TOO_MESSY, zfm.TOO_FEW_FEATURES, zfm.INVALID_IMAGE)


class FingerprintError(Exception):
    def __init__(self, msg, code=None):
        super().__init__(msg)
        self.code = code


class _Garbled(Exception):
    pass


class Fingerprint:
    """One module on one serial line. Every exchange has a deadline;
    ZFM replies carry no sequence number, so exchanges never overlap."""
    __slots__ = ("port", "address", "password", "timeout", "retries", "library_size",
                 "_parser", "_lock")

    def __init__(self, port, address=zfm.DEFAULT_ADDRESS, password=0, timeout=TIMEOUT_S,
                 retries=RETRIES):
        self.port = port
        self.address = address
        self.password = password
        self.timeout = timeout
        self.retries = retries
        self.library_size = None
        self._parser = zfm.Parser()
        self._lock = asyncio.Lock()

    async def _reply(self):
        parser = self._parser
        bad = parser.bad_checksum
        while True:
            parser.feed(await self.port.read(64))
            for address, pid, payload in parser.packets():
                if pid == zfm.ACK and address == self.address and payload:
                    return payload[0], payload[1:]
            if parser.bad_checksum != bad:
                raise _Garbled()

    async def exchange(self, code, *params, ok=(zfm.OK,)):
        """Send a command; (confirmation, data) of its ACK. A confirmation
        outside `ok` raises FingerprintError carrying the code."""
        packet = zfm.command(code, *params, address=self.address)
        async with self._lock:
            problem = None
            for attempt in range(self.retries + 1):
                if attempt:
                    log.count("fp_retries")
                self._parser.clear()
                try:
                    await self.port.write(packet)
                    confirm, data = await asyncio.wait_for(self._reply(), self.timeout)
                    break
                except asyncio.TimeoutError:
                    problem = ("no answer from the fingerprint module within %.1fs (check "
                               "wiring, baud rate 57600, power)" % self.timeout)
                except _Garbled:
                    problem = "garbled reply from the fingerprint module (bad checksum)"
                except OSError as e:
                    raise FingerprintError("fingerprint serial port error: %s" % e)
                log.warn("fingerprint", "command 0x%02x: %s" % (code, problem))
            else:
                raise FingerprintError(problem)
        if confirm not in ok:
            raise FingerprintError(zfm.confirm_text(confirm), confirm)
        return confirm, data

    # -- commands -------------------------------------------------------------
    async def verify_password(self, pw=None):
        await self.exchange(zfm.VFY_PWD, zfm.u32(self.password if pw is None else pw))

    async def read_sys_params(self):
        _, d = await self.exchange(zfm.READ_SYS_PARA)
        if len(d) < 16:
            raise FingerprintError("short system parameter reply (%d bytes)" % len(d))
        self.library_size = _u16(d, 4)
        return {"status": _u16(d, 0), "system_id": _u16(d, 2), "library_size": _u16(d, 4),
                "security_level": _u16(d, 6), "address": (_u16(d, 8) << 16) | _u16(d, 10),
                "packet_size": 32 << _u16(d, 12), "baud": _u16(d, 14) * 9600}

    async def template_count(self):
        _, d = await self.exchange(zfm.TEMPLATE_NUM)
        return _u16(d, 0)

    async def gen_img(self):
        """True: an image was captured; False: no finger on the sensor."""
        confirm, _ = await self.exchange(zfm.GEN_IMG, ok=(zfm.OK, zfm.NO_FINGER))
        return confirm == zfm.OK

    async def img2tz(self, buffer):
        await self.exchange(zfm.IMG2TZ, bytes((buffer,)))

    async def search(self, buffer=1, start=0, count=None):
        """(page, score) of the best match, or None. Plain Search, not
        HighSpeedSearch: some module clones reject the latter."""
        if count is None:
            count = self.library_size or 1000
        confirm, d = await self.exchange(zfm.SEARCH, bytes((buffer,)), zfm.u16(start),
                                         zfm.u16(count), ok=(zfm.OK, zfm.NOT_FOUND))
        if confirm == zfm.NOT_FOUND:
            return None
        return _u16(d, 0), _u16(d, 2)

    async def reg_model(self):
        await self.exchange(zfm.REG_MODEL)

    async def store(self, buffer, page):
        await self.exchange(zfm.STORE, bytes((buffer,)), zfm.u16(page))

    async def delete_char(self, page, count=1):
        await self.exchange(zfm.DELETE_CHAR, zfm.u16(page), zfm.u16(count))

    async def empty(self):
        await self.exchange(zfm.EMPTY)

    # -- flows ------------------------------------------------------------------
    async def match_image(self):
        """Search the library for the image just captured: (page, score) or None."""
        await self.img2tz(1)
        hit = await self.search(1)
        if hit is None:
            log.count("fp_unknown")
            log.info("fingerprint", "finger not recognised")
        return hit

    async def identify(self):
        """(page, score) of the finger on the sensor; None when there is
        no finger or it is not enrolled."""
        if not await self.gen_img():
            return None
        return await self.match_image()

    async def _wait_finger(self, present, wait_s, poll_s):
        for _ in range(max(1, int(wait_s / poll_s))):
            if await self.gen_img() == present:
                return
            await asyncio.sleep(poll_s)
        raise FingerprintError("no finger %s within %ds"
                               % ("placed" if present else "lifted", int(wait_s)))

    async def enrol(self, page, wait_s, poll_s=0.2):
        """Two captures of the same finger (lifted in between) become one
        template at `page`; the person gets `wait_s` for each placement."""
        self._check_page(page)
        await self._wait_finger(True, wait_s, poll_s)
        await self.img2tz(1)
        await self._wait_finger(False, wait_s, poll_s)
        await self._wait_finger(True, wait_s, poll_s)
        await self.img2tz(2)
        await self.reg_model()
        await self.store(1, page)
        return page

    async def delete(self, page):
        self._check_page(page)
        await self.delete_char(page, 1)

    def _check_page(self, page):
        limit = self.library_size or 1000
        if not is_int(page) or not 0 <= page < limit:
            raise FingerprintError("user must be a page number from 0 to %d" % (limit - 1),
                                   zfm.BAD_PAGE)


def _u16(d, i):
    return (d[i] << 8) | d[i + 1]


class FingerprintReader:
    """Peripheral: polls for fingers and reports each placement once.
    `cfg` is the board file's fingerprint entry, defaults filled in by
    agent.config. `on_punch(user_id, score)` and `on_admin(action, user_id)`
    may be replaced (the attendance flow does); they may be plain or async."""
    __slots__ = ("thing", "open_port", "cfg", "fp", "on_punch", "on_admin", "_busy", "_ready",
                 "_admin", "_armed")

    def __init__(self, thing, cfg, open_port=hal.open_serial):
        self.thing = thing
        self.open_port = open_port
        self.cfg = cfg
        self.fp = None
        self.on_punch = self._emit_punch
        self.on_admin = self._emit_admin
        self._busy = asyncio.Lock()  # a flow owns the sensor: enrol must not lose its image to a poll
        self._ready = False
        self._admin = 0  # admin flows waiting: polling pauses so no punch steals their finger
        self._armed = True  # a finger resting on the sensor is one punch, not one per poll
        thing.prop("fingerprint", "offline")
        user = {"user": (INT, 0, 0xFFFF)}   # the template's page; the module's own size is checked too
        thing.command("enrol", self._cmd_enrol, user, ("user",))
        thing.command("delete_user", self._cmd_delete, user, ("user",))
        thing.command("fp_status", self._cmd_status)

    def _emit_punch(self, user_id, score):
        self.thing.emit("finger_identified", {records.USER: str(user_id), records.SCORE: score})

    def _emit_admin(self, action, user_id):
        self.thing.emit("EnrollFP" if action == "enrol" else "DeleteFP", {records.USER: str(user_id)})

    async def _start(self):
        if self.fp is None:
            port = self.open_port(self.cfg["port"], self.cfg["baud"])
            self.fp = Fingerprint(port, self.cfg["address"], self.cfg["password"])
        await self.fp.verify_password()
        params = await self.fp.read_sys_params()
        log.info("fingerprint", "module ready: library of %d templates, %d stored"
                 % (params["library_size"], await self.fp.template_count()))
        self._ready = True
        self.thing.update("fingerprint", "ready")

    async def _call(self, cb, *args):
        res = cb(*args)
        if res is not None and hasattr(res, "send"):
            await res

    async def run(self):
        poll_s = self.cfg["poll_ms"] / 1000
        backoff = Backoff(ERROR_BACKOFF_S[0], ERROR_BACKOFF_S[1], reset_after_s=0)
        while True:
            try:
                if self._admin:
                    await asyncio.sleep(poll_s)
                    continue
                async with self._busy:
                    if not self._ready:
                        await self._start()
                    hit = None
                    present = await self.fp.gen_img()
                    if present and self._armed:
                        self._armed = False
                        hit = await self.fp.match_image()
                    elif not present:
                        self._armed = True
                if hit is not None:
                    await self._call(self.on_punch, hit[0], hit[1])
                backoff.up()
            except FingerprintError as e:
                log.count("fp_errors")
                if e.code in CAPTURE_CODES:
                    log.warn("fingerprint", "capture failed, try again: %s" % e)
                else:
                    self._ready = False  # the module may have rebooted: handshake again
                    self.thing.update("fingerprint", "error")
                    await self._pause(backoff, str(e))
            except OSError as e:  # the port itself could not be opened
                log.count("fp_errors")
                await self._pause(backoff, "serial port %s: %s" % (self.cfg["port"], e))
            await asyncio.sleep(poll_s)

    async def _pause(self, backoff, why):
        backoff.down()
        delay = backoff.next_delay()
        log.error("fingerprint", "%s (retrying in %.1fs)" % (why, delay))
        await asyncio.sleep(delay)

    # -- Thing commands -----------------------------------------------------
    def _fp(self):
        if not self._ready:
            raise CommandError("fingerprint module is not ready")
        return self.fp

    async def _cmd_enrol(self, payload):
        user = payload["user"]
        self._admin += 1
        try:
            async with self._busy:
                fp = self._fp()
                self.thing.update("fingerprint", "enrolling")  # a display says "place finger"
                try:
                    await fp.enrol(user, self.cfg["enrol_timeout_s"])
                finally:
                    self._armed = False  # the enrolled finger still down is no punch
                    self.thing.update("fingerprint", "ready")
        except FingerprintError as e:
            raise CommandError("enrol failed: %s" % e)
        finally:
            self._admin -= 1
        log.info("fingerprint", "user %d enrolled" % user)
        await self._call(self.on_admin, "enrol", user)
        return {"user": user}

    async def _cmd_delete(self, payload):
        user = payload["user"]
        try:
            async with self._busy:
                await self._fp().delete(user)
        except FingerprintError as e:
            raise CommandError("delete failed: %s" % e)
        log.info("fingerprint", "user %d deleted" % user)
        await self._call(self.on_admin, "delete", user)
        return {"user": user}

    async def _cmd_status(self, payload):
        try:
            async with self._busy:
                fp = self._fp()
                params = await fp.read_sys_params()
                params["templates"] = await fp.template_count()
        except FingerprintError as e:
            raise CommandError("fingerprint status failed: %s" % e)
        return params
