# A BME280 temperature/humidity sensor on a Raspberry Pi's I2C bus, through
# RPi.bme280 (the datasheet's compensation formulas) over smbus2. CPython
# only: the gpiozero hal's climate sensor.
#
# The library neither checks what answers at the address nor keeps the
# event loop running while it waits for a conversion (time.sleep), so the
# chip id is checked here and every read runs in a thread of its own with
# a deadline: a door's exit button must never wait behind a sensor. The
# thread is a daemon: a transfer hung on a dead bus must not hold up the
# agent's exit (an executor's threads are joined at exit).
import asyncio
import threading

CHIP_ID_REG = 0xD0
BME280_ID = 0x60
# What else answers there: a BMP280 (no humidity sensor) is the usual
# mix-up, sold on look-alike breakout boards.
OTHER_CHIPS = {0x56: "a BMP280 (no humidity)", 0x57: "a BMP280 (no humidity)", 0x58: "a BMP280 (no humidity)",
               0x55: "a BMP180"}
# A forced conversion at x1 oversampling takes under 10 ms; a read that
# has not ended in 2 s is on a hung bus.
DEADLINE_S = 2


def _open_bus(number):
    import smbus2
    return smbus2.SMBus(number)


def _settle(done, outcome):
    if not done.done():
        done.set_result(outcome)


class Bme280:
    __slots__ = ("bus_number", "address", "_open", "_bus", "_params", "_busy")

    def __init__(self, cfg, open_bus=None):
        self.bus_number = cfg["i2c_bus"]
        self.address = cfg["i2c_address"]
        self._open = open_bus or _open_bus
        self._bus = None
        self._params = None    # the chip's calibration, read once it answered as a BME280
        self._busy = False     # a read's thread has not ended (it may be hung past its deadline)

    def _where(self):
        return "BME280 at 0x%02x on I2C bus %d" % (self.address, self.bus_number)

    async def read(self):
        """(temperature C, humidity %). OSError for any failure: no
        device, another chip, a bus error, a hung bus."""
        if self._busy:
            raise OSError("%s: the previous read has not ended (a hung bus)" % self._where())
        self._busy = True
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        try:
            threading.Thread(target=self._work, args=(loop, done), daemon=True).start()
        except RuntimeError as e:   # no thread to be had (a process at its limit)
            self._busy = False
            raise OSError("%s: %s" % (self._where(), e))
        try:
            # The outcome is a result, never an exception, so that one that
            # comes after the deadline is not reported as never retrieved.
            value, error = await asyncio.wait_for(asyncio.shield(done), DEADLINE_S)
        except asyncio.TimeoutError:
            raise OSError("%s: no answer within %s s" % (self._where(), DEADLINE_S))
        if error is not None:
            raise error
        return value

    def _work(self, loop, done):
        try:
            outcome = (self._read_blocking(), None)
        except OSError as e:
            outcome = (None, e)
        finally:
            self._busy = False
        try:
            loop.call_soon_threadsafe(_settle, done, outcome)
        except RuntimeError:
            pass  # the loop has closed: nobody waits for this read any more

    def _read_blocking(self):
        try:
            import bme280
            if self._params is None:
                if self._bus is None:
                    self._bus = self._open(self.bus_number)
                chip = self._bus.read_byte_data(self.address, CHIP_ID_REG)
                if chip == BME280_ID:
                    self._params = bme280.load_calibration_params(self._bus, self.address)
            if self._params is not None:
                sample = bme280.sample(self._bus, self.address, self._params)
                return sample.temperature, sample.humidity
        except Exception as e:  # noqa: BLE001 - a library fault too is a failed read, never a dead sensor task
            # Start over at the next read: the sensor may be re-seated or
            # replaced, and a new chip has its own calibration.
            self._forget()
            what = str(e) if isinstance(e, OSError) else "%s: %s" % (type(e).__name__, e)
            raise OSError("%s: %s" % (self._where(), what))
        self._forget()
        raise OSError("the chip at 0x%02x on I2C bus %d is %s (id 0x%02x), not a BME280 (id 0x60)"
                      % (self.address, self.bus_number, OTHER_CHIPS.get(chip, "unknown"), chip))

    def _forget(self):
        bus, self._bus, self._params = self._bus, None, None
        if bus is not None:
            try:
                bus.close()
            except Exception:  # noqa: BLE001, S110 - closing a bus that failed is best effort
                pass
