# Raspberry Pi board I/O for the CPython agent, through gpiozero (lgpio on a
# real Pi; tests hand in gpiozero's MockFactory). Same interface as
# EmulatedIO. No run(): local GPIO has no link to keep up, and the Door
# polls its sensor, so no gpiozero callbacks/threads are needed either -
# except for Wiegand, whose 50 us pulses no poll sees (_WiegandPort).
import atexit
import threading
import warnings

from gpiozero import DigitalInputDevice, DigitalOutputDevice, InputDevice

from agent import hal, log
from agent.codecs.wiegand import Port
from agent.hal import safe_boot


def _claim(make):
    """Create a gpiozero device. gpiozero warns once per pin factory it
    falls back from: on a Pi that is worth one log line; off a Pi every
    factory fails and the board error says it in one line, so the warnings
    (four of them) are dropped."""
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        dev = make()
    for w in said:
        log.warn("io", "gpiozero: %s" % w.message)
    return dev


class _Output:
    __slots__ = ("_dev", "energised")

    def __init__(self, dev, energised):
        self._dev = dev
        self.energised = energised

    def on(self):
        self._dev.on()
        self.energised = True

    def off(self):
        self._dev.off()
        self.energised = False


class _Input:
    __slots__ = ("_dev", "_seen")

    def __init__(self, dev):
        self._dev = dev
        self._seen = False

    def value(self):
        # The Door maps raw levels itself (sensor nc/no, rex_level), so the
        # pin's raw state, not gpiozero's value (which is inverted whenever
        # a pull-up is set: gpiozero then treats low as "active").
        return 1 if self._dev.pin.state else 0

    def _edge(self):
        # On lgpio's thread: a flag, nothing more.
        self._seen = True

    def latched(self):
        # Cleared only once seen set: an edge that comes between the two
        # lines is kept for the next call (only a second one is merged).
        if not self._seen:
            return False
        self._seen = False
        return True


class _WiegandPort(Port):
    # gpiozero calls back from lgpio's thread while the reader takes frames
    # on the event loop's: a frame must move out whole.
    __slots__ = ("_lock",)

    def __init__(self, gap_ms):
        super().__init__(gap_ms, hal.ticks_diff)
        self._lock = threading.Lock()

    def bit(self, one, now_ms):
        with self._lock:
            super().bit(one, now_ms)

    def take(self, now_ms):
        with self._lock:
            return super().take(now_ms)


def _open_bus(number):
    import smbus2
    return smbus2.SMBus(number)


class _I2c:
    """The display panel's I2C bus, as machine.I2C's writeto: one I2C_RDWR
    write message per call (smbus2's block writes stop at 32 bytes and add
    a register byte). The bus is opened at the first write and closed after
    a failed one, so a panel plugged in later is found at the next try."""
    __slots__ = ("number", "_open", "_bus")

    def __init__(self, number, open_bus=None):
        self.number = number
        self._open = open_bus or _open_bus
        self._bus = None

    def writeto(self, addr, buf):
        from smbus2 import i2c_msg
        if self._bus is None:
            self._bus = self._open(self.number)   # no /dev/i2c-N (I2C not enabled): an OSError too
        try:
            self._bus.i2c_rdwr(i2c_msg.write(addr, buf))
        except OSError:
            bus, self._bus = self._bus, None
            bus.close()
            raise

    def __str__(self):
        pins = " (SCL GPIO3, SDA GPIO2)" if self.number == 1 else ""
        return "I2C bus %d, /dev/i2c-%d%s" % (self.number, self.number, pins)


class GpiozeroIO:
    __slots__ = ("_factory", "_devices", "__weakref__")

    def __init__(self, pin_factory=None):
        # pin_factory None = gpiozero's default (lgpio on a Pi).
        self._factory = pin_factory
        self._devices = []
        # Runs before gpiozero's own exit handler (atexit runs the last
        # registered first; gpiozero registered at import).
        atexit.register(self.keep_relays)

    def keep_relays(self):
        """At exit (a reboot command, a crash, a stop): leave every relay
        output driven at the level it was claimed at - its door's locked
        level - instead of letting gpiozero's exit handler close it, which
        makes the pin a floating input (lgpio) and releases a maglock or
        lets an active-low module energise until the agent is back. Whether
        the kernel then keeps the line driven once the process is gone is
        the GPIO driver's business, as is the level from power-on until the
        agent starts: a pin whose boot pull is the locked level, or a pull
        resistor to it (doorlink validate warns for the others)."""
        for dev, claimed in self._devices:
            if claimed is None or dev.closed:
                continue
            try:
                dev.value = claimed
                pin, factory = dev.pin, dev.pin_factory
                with factory._res_lock:
                    factory._reservations.pop(pin.info, None)
                getattr(factory, "pins", {}).pop(pin.info, None)
                dev._pin = None   # its close() (gpiozero's handler, __del__) no longer touches the pin
            except Exception as e:  # noqa: BLE001 - at exit, one pin must not stop the next
                log.warn("io", "relay on %s not kept at exit: %s" % (dev, e))

    def output(self, pin, active_high=True, energised=False):
        # initial_value: the pin is claimed at the level asked for (a door's
        # locked level), never passing through the other one - unless safe
        # boot holds it already, claimed so (docs/door-controller.md,
        # section 2): a pin is claimed once.
        dev = safe_boot.take(pin)
        if dev is None:
            dev = _claim(lambda: DigitalOutputDevice(pin, active_high=active_high, initial_value=energised,
                                                     pin_factory=self._factory))
        elif dev.is_active != energised:
            dev.value = energised
        self._devices.append((dev, energised))
        return _Output(dev, energised)

    def input(self, pin, pull=None, latch=None):
        # pull None = floating (a contact with its own pull resistor), else
        # the Pi's internal pull-up or pull-down. gpiozero insists on
        # active_state for a floating pin and forbids it with a pull; _Input
        # reads the raw level either way.
        pull_up = None if pull is None else pull == "up"
        active_state = True if pull is None else None
        if latch is None:
            dev = _claim(lambda: InputDevice(pin, pull_up=pull_up, active_state=active_state,
                                             pin_factory=self._factory))
            self._devices.append((dev, None))
            return _Input(dev)
        # Latched: the edge to `latch` is caught by gpiozero's callback as
        # it happens, so a press shorter than the gap between two polls (an
        # event loop busy elsewhere) is still seen. No bounce_time: the Door
        # debounces, and gpiozero's would drop a short press.
        dev = _claim(lambda: DigitalInputDevice(pin, pull_up=pull_up, active_state=active_state,
                                                pin_factory=self._factory))
        self._devices.append((dev, None))
        inp = _Input(dev)
        # gpiozero's "active" is low with a pull-up, high otherwise.
        if latch == (0 if pull == "up" else 1):
            dev.when_activated = inp._edge
        else:
            dev.when_deactivated = inp._edge
        return inp

    def wiegand(self, d0_pin, d1_pin, frame_gap_ms=100):
        port = _WiegandPort(frame_gap_ms)
        # Wiegand lines idle high and pulse low for each bit: pull-ups, and
        # "activated" (low) is the edge. bounce_time stays None: a pulse
        # lasts 50 us and debouncing would swallow it.
        for pin, one in ((d0_pin, False), (d1_pin, True)):
            dev = _claim(lambda pin=pin: DigitalInputDevice(pin, pull_up=True, pin_factory=self._factory))
            dev.when_activated = lambda one=one: port.bit(one, hal.ticks_ms())
            self._devices.append((dev, None))
        return port

    def climate_sensor(self, cfg):
        # A BME280 on I2C: the bus is opened at the first read, so a sensor
        # that is missing at start is a counted sensor error, not a dead agent.
        from agent.hal.bme280_pi import Bme280
        return Bme280(cfg)

    def i2c(self, cfg):
        return _I2c(cfg["i2c_bus"])

    def close(self):
        for dev, claimed in self._devices:
            if claimed is not None:
                # Back to the level it was claimed at (a door's locked level),
                # not "off": off is an open door for a maglock that unlocks
                # de-energised.
                dev.value = claimed
            dev.close()
        self._devices = []
