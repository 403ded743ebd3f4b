# Stand-in for MicroPython's `machine` on an ESP32 (ESP32-D0WD, the
# DevKitC's chip), for tests under the unix port. It refuses what the real
# chip cannot do or what hangs it, and records what a logic analyser on the
# pins would see, so a test can assert on the wire rather than on calls:
#   writes   every output level driven: (ms since this module loaded, pin, level);
#            also appended as "ms pin level" lines to the file named by
#            $MACHINE_PIN_LOG, so a host test can watch a pin over a whole
#            process's life, restarts and resets included
#   drive(pin, level)  the outside world sets an input; IRQ handlers for
#            that edge run as hard IRQs do: with the heap locked, so one
#            that allocates fails with MemoryError, as it would on the chip
#   WDT      "resets" (SystemExit(WDT_EXIT)) when fed after its timeout
#   reset()  ends the process (SystemExit(RESET_EXIT)), as a reset would
#   UART     over a pty (UART_PATHS[id] = path: an emulator's end) or, with
#            no path, an in-memory loopback (TX wired to RX)
#   I2C, SoftI2C  pins and clock checked as the firmware does; a write goes
#            to the device model a test put at that address in
#            i2c_devices, and with none there raises OSError(ENODEV)
import io
import os
import time

import micropython

RESET_EXIT = 80   # machine.reset() was called
WDT_EXIT = 81     # the watchdog was not fed in time

# ESP32 GPIOs: 0-39 without 20, 24 and 28-31, which the chip does not bond
# out. 6-11 drive the SPI flash: claiming one hangs the board. 34-39 are
# inputs only, with no pull resistors.
GPIOS = tuple(n for n in range(40) if n not in (20, 24, 28, 29, 30, 31))
FLASH = tuple(range(6, 12))
INPUT_ONLY = tuple(range(34, 40))

_T0 = time.ticks_ms()
writes = []
_PIN_LOG = os.getenv("MACHINE_PIN_LOG")
_out = {}        # pin -> its output register (0 at reset), as the chip keeps it
_ext = {}        # pin -> the level the outside world drives on it
_irq_off = [0]   # disable_irq() depth
_pending = []    # edges that came while IRQs were off
_pins = {}


def _since():
    return time.ticks_diff(time.ticks_ms(), _T0)


def _record(line):
    if _PIN_LOG:
        with open(_PIN_LOG, "a") as f:
            f.write(line + "\n")


def _check_gpio(n):
    if n not in GPIOS:
        raise ValueError("invalid pin %r: an ESP32 has no GPIO%s" % (n, n))
    if n in FLASH:
        raise ValueError("GPIO%d drives the SPI flash: using it hangs the board" % n)


class _Irq:
    __slots__ = ("handler", "trigger", "hard")

    def __init__(self, handler, trigger, hard):
        self.handler = handler
        self.trigger = trigger
        self.hard = hard


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __new__(cls, id, *args, **kw):
        # One object per GPIO, as the firmware's static pin table has.
        _check_gpio(id)
        pin = _pins.get(id)
        if pin is None:
            pin = _pins[id] = object.__new__(cls)
            pin.id = id
            pin.mode = None
            pin.pull = None
            pin.irq_ = None
        return pin

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        n = self.id
        if mode == Pin.OUT or mode == Pin.OPEN_DRAIN:
            if n in INPUT_ONLY:
                raise ValueError("GPIO%d can only be an input" % n)
        if pull not in (-1, None) and n in INPUT_ONLY:
            raise ValueError("GPIO%d has no pull resistor" % n)
        if pull != -1:
            self.pull = pull
        # The firmware sets the level before the direction: a pin claimed
        # with a value never shows another one. Without a value it drives
        # whatever its output register holds (0 after a reset).
        if value is not None:
            _out[n] = 1 if value else 0
        if mode != -1:
            was = self.mode
            self.mode = mode
            if mode != Pin.IN and (was is None or was == Pin.IN or value is not None):
                self._drive()
        elif value is not None and self.mode not in (None, Pin.IN):
            self._drive()

    def _drive(self):
        level = _out.get(self.id, 0)
        writes.append((_since(), self.id, level))
        _record("%d %d %d" % (_since(), self.id, level))

    def value(self, v=None):
        n = self.id
        if v is None:
            if self.mode not in (None, Pin.IN):
                return _out.get(n, 0)
            if n in _ext:
                return _ext[n]
            return 1 if self.pull == Pin.PULL_UP else 0
        if self.mode in (None, Pin.IN):
            raise OSError("GPIO%d is not an output" % n)
        _out[n] = 1 if v else 0
        self._drive()
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3, hard=False):
        self.irq_ = None if handler is None else _Irq(handler, trigger, hard)

    def __repr__(self):
        return "Pin(%d)" % self.id


def drive(n, level):
    """The outside world puts `level` on input GPIO n; an IRQ for that edge
    runs at once (or when IRQs are enabled again)."""
    pin = _pins.get(n)
    if pin is not None and pin.mode not in (None, Pin.IN):
        raise AssertionError("GPIO%d is an output: a test cannot drive it" % n)
    was = _ext.get(n, 1 if pin is not None and pin.pull == Pin.PULL_UP else 0)
    _ext[n] = level
    if pin is None or pin.irq_ is None or level == was:
        return
    edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
    if pin.irq_.trigger & edge:
        if _irq_off[0]:
            _pending.append(pin)
        else:
            _fire(pin)


def _fire(pin):
    irq = pin.irq_
    if not irq.hard:
        irq.handler(pin)
        return
    micropython.heap_lock()
    try:
        irq.handler(pin)
    finally:
        micropython.heap_unlock()


def disable_irq():
    _irq_off[0] += 1
    return _irq_off[0] - 1


def enable_irq(state):
    _irq_off[0] = state
    while not _irq_off[0] and _pending:
        _fire(_pending.pop(0))


def reset():
    _record("reset")
    raise SystemExit(RESET_EXIT)


def unique_id():
    return b"\x24\x0a\xc4\x00\x00\x01"


# -- watchdog ------------------------------------------------------------------
wdt = [None]   # the one watchdog, once started (the chip has one; it cannot be stopped)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%r): an ESP32 has watchdog 0 only" % id)
        if not 1 <= timeout <= 0x7FFFFFFF:
            raise ValueError("WDT timeout %r ms is out of range" % timeout)
        self.timeout = timeout
        self.feeds = 0
        self._fed = time.ticks_ms()
        wdt[0] = self

    def expired(self):
        """True once the chip would have reset."""
        return time.ticks_diff(time.ticks_ms(), self._fed) > self.timeout

    def feed(self):
        # Feeding late is code that, on the chip, never ran: the reset came first.
        if self.expired():
            _record("wdt")
            raise SystemExit(WDT_EXIT)
        self.feeds += 1
        self._fed = time.ticks_ms()


# -- UART ----------------------------------------------------------------------
UART_PATHS = {}   # UART id -> the pty at the other end (an emulator's)
_MP_STREAM_POLL = 3
_POLL_RD = 1
_POLL_WR = 4


class UART(io.IOBase):
    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None, timeout=0, **kw):
        if id not in (1, 2):
            raise ValueError("UART(%r): 0 is the REPL console; an ESP32 has UARTs 1 and 2" % id)
        if id == 1 and (tx is None or rx is None):
            raise ValueError("UART1's default pins (9, 10) drive the SPI flash: give tx and rx")
        for n in (tx, rx):
            if n is not None:
                _check_gpio(n)
        if tx is not None and tx in INPUT_ONLY:
            raise ValueError("GPIO%d can only be an input: not a TX pin" % tx)
        self.id = id
        self.baudrate = baudrate
        self._rx = bytearray()
        self._f = None
        path = UART_PATHS.get(id)
        if path:
            import termios
            self._f = open(path, "r+b")
            termios.setraw(self._f.fileno())
            attr = termios.tcgetattr(self._f.fileno())
            attr[6][6] = 0   # VMIN 0: a read returns at once, like a UART's FIFO
            attr[6][5] = 0
            termios.tcsetattr(self._f.fileno(), termios.TCSANOW, attr)

    def _fill(self):
        if self._f is not None:
            data = self._f.read(256)
            if data:
                self._rx += data

    def any(self):
        self._fill()
        return len(self._rx)

    def read(self, n=-1):
        self._fill()
        if not self._rx:
            return None
        n = len(self._rx) if n is None or n < 0 else n
        data = bytes(self._rx[:n])
        self._rx = self._rx[len(data):]
        return data

    def readinto(self, buf, n=-1):
        data = self.read(len(buf) if n < 0 else n)
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)

    def write(self, data):
        if self._f is None:
            self._rx += data
        else:
            self._f.write(data)
        return len(data)

    def ioctl(self, req, arg):
        if req == _MP_STREAM_POLL:
            return (_POLL_RD if arg & _POLL_RD and self.any() else 0) | (arg & _POLL_WR)
        return 0

    def deinit(self):
        if self._f is not None:
            self._f.close()
            self._f = None


# -- I2C -----------------------------------------------------------------------
# The devices on the bus, by 7-bit address: each has write(buf), called with
# every write transaction it ACKs (a test's model: tests/ssd1306_model.py).
# Nothing at an address: no ACK, and writeto raises OSError(ENODEV) as the
# firmware's hardware I2C does.
i2c_devices = {}
ENODEV = 19
# ESP32 I2C: standard, fast and fast-mode-plus clocks (the controller's
# ceiling is about 1 MHz; the ESP-IDF driver refuses more).
I2C_FREQ = (1, 1000000)
# The firmware's default pins per hardware controller (ports/esp32/machine_i2c.c).
I2C_PINS = {0: (18, 19), 1: (25, 26)}


def _pin_id(p):
    return p if isinstance(p, int) else p.id


class SoftI2C:
    """Bit-banged I2C: any two output-capable GPIOs (SCL is driven, SDA
    driven and read, both open-drain)."""

    def __init__(self, scl, sda, freq=400000, timeout=50000):
        self._setup(_pin_id(scl), _pin_id(sda), freq)

    def _setup(self, scl, sda, freq):
        for name, n in (("SCL", scl), ("SDA", sda)):
            _check_gpio(n)
            if n in INPUT_ONLY:
                raise ValueError("GPIO%d can only be an input: not an I2C %s pin" % (n, name))
        if scl == sda:
            raise ValueError("SCL and SDA are both GPIO%d" % scl)
        if not isinstance(freq, int) or not I2C_FREQ[0] <= freq <= I2C_FREQ[1]:
            raise ValueError("I2C freq %r Hz is out of range (up to %d)" % (freq, I2C_FREQ[1]))
        self.scl = scl
        self.sda = sda
        self.freq = freq

    def writeto(self, addr, buf, stop=True):
        if not 0 <= addr <= 0x7F:
            raise ValueError("I2C address %r is not 7-bit" % (addr,))
        dev = i2c_devices.get(addr)
        if dev is None:
            raise OSError(ENODEV)
        dev.write(buf)
        return len(buf)

    def writevto(self, addr, vector, stop=True):
        # One transaction: the buffers back to back on the wire.
        joined = bytearray()
        for b in vector:
            joined += b
        return self.writeto(addr, joined, stop)

    def scan(self):
        return sorted(i2c_devices)

    def __repr__(self):
        return "SoftI2C(scl=%d, sda=%d, freq=%d)" % (self.scl, self.sda, self.freq)


class I2C(SoftI2C):
    """The chip's I2C controllers 0 and 1, routed to any GPIO pair."""

    def __init__(self, id, scl=None, sda=None, freq=400000, timeout=50000):
        if id not in I2C_PINS:
            raise ValueError("I2C(%r) doesn't exist: an ESP32 has I2C 0 and 1" % (id,))
        self.id = id
        dscl, dsda = I2C_PINS[id]
        self._setup(dscl if scl is None else _pin_id(scl), dsda if sda is None else _pin_id(sda), freq)

    def __repr__(self):
        return "I2C(%d, scl=%d, sda=%d, freq=%d)" % (self.id, self.scl, self.sda, self.freq)
