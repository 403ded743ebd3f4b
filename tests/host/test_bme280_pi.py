"""The Pi's climate sensor: a BME280 through RPi.bme280 and smbus2, against
a fake I2C bus that answers like the chip (CPython only, as the Pi's hal).

The fake holds the BME280's register map: chip id 0x60 at 0xD0, the
calibration words at 0x88-0xA1 and 0xE1-0xE7 (the worked example of
Bosch's BMP280 datasheet for temperature and pressure, a real chip's dump
for humidity), ctrl_hum taking effect only at the next ctrl_meas write,
a forced conversion on that write, and the data registers at their reset
value (0x80000, "skipped") until one ran. Raw ADC values are made from
the temperature and humidity it is set to by inverting the datasheet's
compensation formulas, so what the library computes can be checked
against what the room is.
"""

import asyncio
import sys
import threading

import pytest
import smbus2
from gpiozero.pins.mock import MockFactory

from agent import config, log
from agent.hal import bme280_pi
from agent.hal.gpiozero_io import GpiozeroIO
from agent.peripherals.climate import Climate
from agent.thing import Thing

EREMOTEIO = 121   # what i2c-dev answers when nothing acknowledges the address

T1, T2, T3 = 27504, 26435, -1000
P = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
H1, H2, H3, H4, H5, H6 = 75, 362, 0, 313, 50, 30
DATASHEET_ADC_T, DATASHEET_T = 519888, 25.08   # BMP280 datasheet, section 3.12


def _t_fine(adc_t):
    v1 = (adc_t / 16384.0 - T1 / 1024.0) * T2
    v2 = (adc_t / 131072.0 - T1 / 8192.0) ** 2 * T3
    return v1 + v2


def raw_temperature(celsius):
    """The 20-bit ADC value the chip reads at `celsius` (the datasheet's
    formula is monotonic over the range: bisection)."""
    lo, hi = 0, (1 << 20) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _t_fine(mid) / 5120.0 < celsius:
            lo = mid + 1
        else:
            hi = mid
    return lo


def raw_humidity(percent, adc_t):
    """The 16-bit ADC value for `percent` at the temperature adc_t reads:
    the datasheet's humidity formula is h = x (1 - H1 x / 524288) with x
    linear in adc_H; solve the quadratic for x, then adc_H."""
    var = _t_fine(adc_t) - 76800.0
    a = H1 / 524288.0
    x = (1 - (1 - 4 * a * percent) ** 0.5) / (2 * a)
    k = H2 / 65536.0 * (1.0 + H6 / 67108864.0 * var * (1.0 + H3 / 67108864.0 * var))
    return round(x / k + H4 * 64.0 + H5 / 16384.0 * var)


def _le16(value):
    value &= 0xFFFF
    return [value & 0xFF, value >> 8]


class FakeBme280Bus:
    """An smbus2.SMBus with one BME280 on it."""

    def __init__(self, address=0x76, chip_id=0x60, celsius=21.5, humidity=45.0):
        self.address = address
        self.reg = [0] * 256
        self.reg[0xD0] = chip_id
        calib = _le16(T1) + _le16(T2) + _le16(T3)
        for p in P:
            calib += _le16(p)
        self.reg[0x88:0x88 + 24] = calib
        self.reg[0xA1] = H1
        self.reg[0xE1:0xE8] = _le16(H2) + [H3, H4 >> 4, (H5 & 0xF) << 4 | (H4 & 0xF), H5 >> 4, H6 & 0xFF]
        self.reg[0xF7:0xFF] = [0x80, 0, 0, 0x80, 0, 0, 0x80, 0]   # reset: skipped
        self.hum_pending = 0
        self.set(celsius, humidity)
        self.adc_p = 415148
        self.broken = False          # a bus error on every transfer (a wire pulled)
        self.hang = None             # a threading.Event every transfer waits for (a hung bus)
        self.conversions = 0
        self.closed = False

    def set(self, celsius, humidity, adc_t=None):
        self.adc_t = adc_t if adc_t is not None else raw_temperature(celsius)
        self.adc_h = raw_humidity(humidity, self.adc_t)

    def _transfer(self, address):
        if self.hang is not None:
            self.hang.wait(5)
        if self.closed:
            raise ValueError("I/O operation on closed file")   # what smbus2 says after close()
        if self.broken or address != self.address:
            raise OSError(EREMOTEIO, "Remote I/O error")

    def read_byte_data(self, address, register):
        self._transfer(address)
        return self.reg[register]

    def read_word_data(self, address, register):
        self._transfer(address)
        return self.reg[register] | self.reg[(register + 1) & 0xFF] << 8

    def read_i2c_block_data(self, address, register, length):
        if length > 32:
            raise ValueError("Desired block length over 32 bytes")
        self._transfer(address)
        return [self.reg[(register + i) & 0xFF] for i in range(length)]

    def write_byte_data(self, address, register, value):
        self._transfer(address)
        if register == 0xF2:
            self.hum_pending = value & 0x07      # latched at the next ctrl_meas write
        elif register == 0xF4:
            self.reg[0xF2] = self.hum_pending
            if value & 0x03 in (1, 2):           # forced mode: one conversion, then sleep
                self._convert(value)
                value &= ~0x03
            self.reg[0xF4] = value
        elif register in (0xF5, 0xE0):
            self.reg[register] = value
        # every other register is read-only: the chip ignores the write

    def _convert(self, ctrl_meas):
        self.conversions += 1
        p = self.adc_p if ctrl_meas >> 2 & 0x07 else 0x80000
        t = self.adc_t if ctrl_meas >> 5 else 0x80000
        h = self.adc_h if self.reg[0xF2] else 0x8000
        self.reg[0xF7:0xFF] = [p >> 12, p >> 4 & 0xFF, (p & 0xF) << 4, t >> 12, t >> 4 & 0xFF, (t & 0xF) << 4,
                               h >> 8, h & 0xFF]

    def close(self):
        self.closed = True


def _sensor(bus, **cfg):
    opened = []

    def open_bus(number):
        opened.append(number)
        bus.closed = False
        return bus
    sensor = bme280_pi.Bme280(config.peripheral("climate", cfg), open_bus)
    return sensor, opened


async def test_the_datasheet_example_reads_as_the_datasheet_says():
    bus = FakeBme280Bus()
    bus.set(None, 42.5, adc_t=DATASHEET_ADC_T)
    sensor, opened = _sensor(bus)
    t, h = await sensor.read()
    assert round(t, 2) == DATASHEET_T
    assert abs(h - 42.5) < 0.01
    assert opened == [1]


async def test_each_read_is_a_new_conversion():
    bus = FakeBme280Bus(celsius=21.5, humidity=45.0)
    sensor, opened = _sensor(bus)
    t, h = await sensor.read()
    assert abs(t - 21.5) < 0.01 and abs(h - 45.0) < 0.01
    bus.set(-10.25, 88.0)
    t, h = await sensor.read()
    assert abs(t + 10.25) < 0.01 and abs(h - 88.0) < 0.01
    assert bus.conversions == 2 and opened == [1]   # one bus, calibration read once


async def test_the_address_and_bus_come_from_the_board_file():
    bus = FakeBme280Bus(address=0x77)
    sensor, opened = _sensor(bus, i2c_bus=3, i2c_address=0x77)
    assert abs((await sensor.read())[0] - 21.5) < 0.01
    assert opened == [3]
    sensor, _ = _sensor(FakeBme280Bus(address=0x77))   # configured at 0x76: nothing answers there
    with pytest.raises(OSError, match=r"BME280 at 0x76 on I2C bus 1: \[Errno 121\] Remote I/O error"):
        await sensor.read()


async def test_a_bmp280_is_named_not_read():
    # The look-alike breakout: same address, same calibration layout, no
    # humidity sensor (its humidity would read as a made-up number).
    sensor, _ = _sensor(FakeBme280Bus(chip_id=0x58))
    with pytest.raises(OSError, match=r"0x76 on I2C bus 1 is a BMP280 \(no humidity\) \(id 0x58\), not a BME280"):
        await sensor.read()


async def test_a_library_fault_is_a_failed_read_and_the_next_starts_over(monkeypatch):
    bus = FakeBme280Bus()
    sensor, opened = _sensor(bus)
    await sensor.read()
    bus.closed = True   # smbus2 raises ValueError on a closed bus, not OSError
    with pytest.raises(OSError, match="BME280 at 0x76 on I2C bus 1: ValueError: I/O operation on closed file"):
        await sensor.read()
    assert abs((await sensor.read())[0] - 21.5) < 0.01
    assert opened == [1, 1]
    monkeypatch.setitem(sys.modules, "bme280", None)   # a Pi without the `pi` extra
    sensor, _ = _sensor(FakeBme280Bus())
    with pytest.raises(OSError, match="BME280 at 0x76 on I2C bus 1: ModuleNotFoundError: .*bme280"):
        await sensor.read()


def _pi_climate(monkeypatch, bus):
    opened = []

    def smbus(number):
        opened.append(number)
        bus.closed = False
        return bus
    monkeypatch.setattr(smbus2, "SMBus", smbus)
    factory = MockFactory()
    io = GpiozeroIO(pin_factory=factory)
    thing = Thing("pi")
    sent = []
    thing.listen(lambda kind, name, value: sent.append(value) if kind == "telemetry" else None)
    climate = Climate(thing, io, config.peripheral("climate", {"name": "lobby"}), 5)
    return climate, sent, opened, (io, factory)


async def test_a_bus_error_is_a_counted_sensor_error_and_the_sensor_comes_back(monkeypatch):
    bus = FakeBme280Bus(celsius=19.0, humidity=50.0)
    climate, sent, opened, (io, factory) = _pi_climate(monkeypatch, bus)
    try:
        await climate.step()
        assert [round(s["temperature"], 1) for s in sent] == [19.0]
        before = log.counters.get("sensor_errors", 0)
        bus.broken = True
        await climate.step()
        assert log.counters.get("sensor_errors", 0) == before + 1
        assert len(sent) == 1 and bus.closed
        bus.broken = False
        bus.set(26.0, 50.0)
        t, _ = await climate.sensor.read()
        assert round(t, 1) == 26.0
        assert opened == [1, 1]  # opened again, the chip id and calibration read again
    finally:
        io.close()
        factory.close()


async def test_a_hung_bus_does_not_hold_the_event_loop(monkeypatch):
    monkeypatch.setattr(bme280_pi, "DEADLINE_S", 0.05)
    bus = FakeBme280Bus()
    sensor, _ = _sensor(bus)
    bus.hang = threading.Event()
    try:
        with pytest.raises(OSError, match="BME280 at 0x76 on I2C bus 1: no answer within"):
            await sensor.read()
        # The stuck transfer still holds the bus: no second one beside it.
        with pytest.raises(OSError, match="has not ended"):
            await sensor.read()
    finally:
        bus.hang.set()
    bus.hang = None
    for _ in range(100):   # the stuck read ends once the bus lets go
        if not sensor._busy:
            break
        await asyncio.sleep(0.01)
    assert abs((await sensor.read())[0] - 21.5) < 0.01
