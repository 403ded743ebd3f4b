# Raspberry Pi board I/O for the CPython agent, through gpiozero (lgpio on a
# real Pi; tests hand in gpiozero's MockFactory). Same interface as
# EmulatedIO. No run(): local GPIO has no link to keep up, and the Door
# polls its sensor, so no gpiozero callbacks/threads are needed either.
import warnings

from gpiozero import DigitalOutputDevice, InputDevice

from agent import log


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
    __slots__ = ("_dev",)

    def __init__(self, dev):
        self._dev = dev

    def on(self):
        self._dev.on()

    def off(self):
        self._dev.off()


class _Input:
    __slots__ = ("_dev",)

    def __init__(self, dev):
        self._dev = dev

    def value(self):
        # The Door maps the raw level via sensor_open_level, so return the
        # pin's raw state, not gpiozero's value (which is inverted whenever
        # a pull-up is set: gpiozero then treats low as "active").
        return 1 if self._dev.pin.state else 0


class GpiozeroIO:
    __slots__ = ("_factory", "_pull_up", "_devices")

    def __init__(self, pin_factory=None, sensor_pull_up=None):
        # pin_factory None = gpiozero's default (lgpio on a Pi).
        # sensor_pull_up: None = floating (reed switch with an external
        # pull resistor), True/False = the Pi's internal pull-up/pull-down.
        self._factory = pin_factory
        self._pull_up = sensor_pull_up
        self._devices = []

    def output(self, pin, active_high=True):
        # initial_value=False: the relay is de-energised from the moment the
        # pin is claimed (safe state), before the Door's own off().
        dev = _claim(lambda: DigitalOutputDevice(pin, active_high=active_high, initial_value=False,
                                                 pin_factory=self._factory))
        self._devices.append(dev)
        return _Output(dev)

    def input(self, pin):
        # gpiozero insists on active_state for a floating pin and forbids it
        # with a pull; _Input reads the raw level either way.
        active_state = True if self._pull_up is None else None
        dev = _claim(lambda: InputDevice(pin, pull_up=self._pull_up, active_state=active_state,
                                         pin_factory=self._factory))
        self._devices.append(dev)
        return _Input(dev)

    def climate_sensor(self, cfg):
        raise ValueError("climate sensors are not supported on the gpiozero hal yet")

    def close(self):
        for dev in self._devices:
            if isinstance(dev, DigitalOutputDevice):
                dev.off()  # leave relays de-energised, not at a released pin's whim
            dev.close()
        self._devices = []
