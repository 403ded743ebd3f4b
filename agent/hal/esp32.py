# ESP32 board I/O through the firmware's `machine` module: the adapter of
# docs/door-controller.md section 1 for hal "esp32" (a DHT22 is in
# agent/hal/dht22.py, loaded only where one is wired). Wi-Fi is the site's,
# not the board's: agent/hal/wifi.py, started by the device.
#
# What the chip itself imposes, and this adapter keeps to:
# - Pin(n, Pin.OUT, value=v) sets the level before the direction, so a
#   relay is claimed at its level and never shows another one.
# - GPIO 34-39 have no pull resistors: a pull asked for there is refused
#   (the firmware would ignore it and the input would float).
# - Wiegand pulses last about 50 us, far below any poll: the bits are taken
#   in hard IRQ handlers, which run with the heap locked and so must not
#   allocate - agent.codecs.wiegand.Port.bit() allocates nothing.
import machine

from agent.codecs.wiegand import Port
from agent.hal import ticks_diff, ticks_ms

NO_PULL = (34, 35, 36, 37, 38, 39)


def claim_output(pin, level):
    """GPIO `pin` as an output driving `level` from its first instant (safe
    boot claims the relays with it). Returns the machine.Pin."""
    return machine.Pin(pin, machine.Pin.OUT, value=level)


def watchdog(timeout_ms):
    """The chip's watchdog, started: once started it cannot be stopped, and
    a board not fed within timeout_ms resets."""
    return machine.WDT(timeout=timeout_ms)


def _pull(pin, pull):
    if pull is None:
        return None
    if pin in NO_PULL:
        raise ValueError("GPIO%d has no pull resistor (GPIO 34-39 have none): wire an external one" % pin)
    if pull == "up":
        return machine.Pin.PULL_UP
    if pull == "down":
        return machine.Pin.PULL_DOWN
    raise ValueError("pull must be 'up', 'down' or None, got %r" % (pull,))


class _Output:
    __slots__ = ("_pin", "_on", "energised")

    def __init__(self, pin, on_level, energised):
        self._pin = pin
        self._on = on_level
        self.energised = energised

    def on(self):
        self._pin.value(self._on)
        self.energised = True

    def off(self):
        self._pin.value(1 - self._on)
        self.energised = False


class _Latched:
    """An input whose active level is also caught between reads: a hard IRQ
    on the edge to it sets a flag (no allocation, as a hard IRQ requires),
    so an exit button tapped while the event loop was busy is not lost."""
    __slots__ = ("_pin", "_seen")

    def __init__(self, pin, level):
        self._pin = pin
        self._seen = False
        edge = machine.Pin.IRQ_RISING if level else machine.Pin.IRQ_FALLING
        pin.irq(handler=self._edge, trigger=edge, hard=True)

    def _edge(self, pin):
        self._seen = True

    def value(self):
        return self._pin.value()

    def latched(self):
        # Cleared only once seen set: an edge that comes between the two
        # lines is kept for the next call (only a second one is merged).
        if not self._seen:
            return False
        self._seen = False
        return True


class _Wiegand(Port):
    """Bits from D0/D1 falling edges, gathered in hard IRQ handlers."""
    __slots__ = ("_pins",)

    def __init__(self, d0, d1, gap_ms):
        Port.__init__(self, gap_ms, ticks_diff)
        self._pins = (self._listen(d0, self._zero), self._listen(d1, self._one))

    @staticmethod
    def _listen(n, handler):
        # Readers drive D0/D1 both ways, but an open-collector one needs the
        # pull-up; on 34-39 the board must carry its own.
        pin = machine.Pin(n, machine.Pin.IN, None if n in NO_PULL else machine.Pin.PULL_UP)
        pin.irq(handler=handler, trigger=machine.Pin.IRQ_FALLING, hard=True)
        return pin

    def _zero(self, pin):
        self.bit(0, ticks_ms())

    def _one(self, pin):
        self.bit(1, ticks_ms())

    def take(self, now_ms):
        state = machine.disable_irq()
        n = self.grab(now_ms)
        machine.enable_irq(state)
        return self.frame(n) if n else None


class Esp32IO:
    __slots__ = ()

    def output(self, pin, active_high=True, energised=False):
        from agent.hal import safe_boot
        on = 1 if active_high else 0
        level = on if energised else 1 - on
        dev = safe_boot.take(pin)
        if dev is None:
            dev = claim_output(pin, level)
        elif dev.value() != level:
            dev.value(level)
        return _Output(dev, on, energised)

    def input(self, pin, pull=None, latch=None):
        dev = machine.Pin(pin, machine.Pin.IN, _pull(pin, pull))
        return dev if latch is None else _Latched(dev, latch)

    def wiegand(self, d0_pin, d1_pin, frame_gap_ms=100):
        return _Wiegand(d0_pin, d1_pin, frame_gap_ms)

    def climate_sensor(self, cfg):
        if cfg.get("pin") is None:
            raise ValueError("a DHT22 on an ESP32 needs its data GPIO: set the climate sensor's \"pin\"")
        from agent.hal.dht22 import Dht22
        return Dht22(cfg["pin"])

    def watchdog(self, timeout_ms):
        return watchdog(timeout_ms)

    def i2c(self, cfg):
        """The I2C bus to the display's panel: the chip's I2C controller 0
        on cfg's SCL and SDA GPIOs (any output-capable pair: the GPIO
        matrix routes it), at cfg's clock."""
        scl, sda = cfg["scl_pin"], cfg["sda_pin"]
        if scl == sda:
            raise ValueError("SCL and SDA are both GPIO%d: the panel needs two pins" % scl)
        for n in (scl, sda):
            if n in NO_PULL:
                raise ValueError("GPIO%d can only be an input: I2C drives SCL and SDA" % n)
        return machine.I2C(0, scl=machine.Pin(scl), sda=machine.Pin(sda), freq=cfg["freq_hz"])
