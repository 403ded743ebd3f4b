# Emulated board I/O: the pins and sensors live in a host-side emulator
# (host_tools/emulator.py), reached over a TCP socket with one JSON object
# per line. Inputs are mirrored here as the emulator pushes them, so reading
# a pin is as instant as reading a GPIO register; output writes are pushed.
#
#   agent -> emulator: {"hello": "board"}  {"pin": 26, "value": 1}
#   emulator -> agent: {"pin": 27, "value": 0}
#                      {"climate": {"temperature": 21.5, "humidity": 40}}
import asyncio
import json

from agent import log
from agent.errors import LinkClosed
from agent.hal import drop_stream, safe_boot, ticks_diff, ticks_ms

# Bits in one {"wiegand": [d0, d1], "bits": "0101..."} line: a noise burst
# longer than any frame, small enough that one line cannot keep the agent busy.
MAX_BURST = 256


class _Output:
    __slots__ = ("_io", "pin", "_active_high", "level", "energised")

    def __init__(self, io, pin, active_high, energised):
        self._io = io
        self.pin = pin
        self._active_high = active_high
        self.level = None
        self._set(energised)

    def on(self):
        self._set(True)

    def off(self):
        self._set(False)

    def _set(self, energised):
        self.energised = energised
        self.level = 1 if energised == self._active_high else 0
        self._io.push({"pin": self.pin, "value": self.level})


class _Input:
    __slots__ = ("_io", "pin", "latch", "seen")

    def __init__(self, io, pin, latch):
        self._io = io
        self.pin = pin
        self.latch = latch   # the level latched as it arrives, or None
        self.seen = False

    def value(self):
        return self._io.inputs.get(self.pin)

    def latched(self):
        seen, self.seen = self.seen, False
        return seen


class _Climate:
    __slots__ = ("_io",)

    def __init__(self, io):
        self._io = io

    async def read(self):
        # Like a real sensor right after power-up: give it a moment.
        if self._io.climate is None:
            try:
                await asyncio.wait_for(self._io.climate_ready.wait(), 2)
            except asyncio.TimeoutError:
                raise OSError("emulated climate sensor not responding")
        values = self._io.climate
        return values["temperature"], values["humidity"]


class EmulatedIO:
    __slots__ = ("host", "port", "inputs", "climate", "climate_ready", "_outputs", "_writer", "_wiegand",
                 "_latched")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.inputs = {}
        self.climate = None
        self.climate_ready = asyncio.Event()
        self._outputs = []
        self._writer = None
        self._wiegand = {}   # d0 pin -> (d1 pin, Port)
        self._latched = {}   # pin -> _Input claimed with a latch

    def output(self, pin, active_high=True, energised=False):
        safe_boot.take(pin)   # the level it held is this output's from now on
        out = _Output(self, pin, active_high, energised)
        self._outputs.append(out)
        return out

    def input(self, pin, pull=None, latch=None):
        # The emulator drives every input to a level: a pull changes nothing.
        inp = _Input(self, pin, latch)
        if latch is not None:
            self._latched[pin] = inp
        return inp

    def climate_sensor(self, cfg):
        return _Climate(self)

    def i2c(self, cfg):
        # No panel on the emulator: the display is its buffer, which
        # screen/snapshot shows.
        return None

    def wiegand(self, d0_pin, d1_pin, frame_gap_ms=100):
        from agent.codecs.wiegand import Port
        port = Port(frame_gap_ms, ticks_diff)
        self._wiegand[d0_pin] = (d1_pin, port)
        return port

    def _wiegand_bits(self, msg):
        # The bits of one burst, fed in as the edge interrupts would have,
        # all at the moment the line arrived: a gap between bursts is real
        # time on the agent's clock, so frames split as on a board.
        d0, d1 = msg["wiegand"]
        bits = msg["bits"]
        wired = self._wiegand.get(d0)
        if wired is None or wired[0] != d1:
            raise ValueError("no Wiegand reader on pins %r" % (msg["wiegand"],))
        if not isinstance(bits, str) or len(bits) > MAX_BURST or bits.strip("01"):
            raise ValueError("bits must be up to %d of 0 and 1" % MAX_BURST)
        port = wired[1]
        now = ticks_ms()
        for c in bits:
            port.bit(c == "1", now)

    def push(self, msg):
        # Before the emulator answers, the level is only kept; it is sent on
        # connect (like a pin that holds its level while the probe is off).
        if self._writer is not None:
            self._writer.write((json.dumps(msg) + "\n").encode())

    async def run(self):
        """Keep the wire to the emulator up (a supervised task)."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(b'{"hello": "board"}\n')
            self._writer = writer
            # Relays safe boot locked and no output has taken (yet) first:
            # docs/door-controller.md, section 2.
            for pin in safe_boot.claimed:
                self.push({"pin": pin, "value": safe_boot.claimed[pin]})
            for out in self._outputs:
                if out.level is not None:
                    self.push({"pin": out.pin, "value": out.level})
            await writer.drain()
            log.info("io", "emulator connected at %s:%d" % (self.host, self.port))
            while True:
                line = await reader.readline()
                if not line:
                    raise LinkClosed("emulator closed the connection")
                self._apply(line)
                await writer.drain()
        finally:
            self._writer = None
            self.inputs = {}
            self.climate = None
            self.climate_ready.clear()
            drop_stream(writer)

    def _apply(self, line):
        try:
            msg = json.loads(line)
            if "pin" in msg:
                pin, level = int(msg["pin"]), int(msg["value"])
                # Latched as it arrives: a press and its release can both be
                # read off the socket before the door's next poll.
                inp = self._latched.get(pin)
                was = self.inputs.get(pin)
                if inp is not None and level == inp.latch and was is not None and was != level:
                    inp.seen = True
                self.inputs[pin] = level
            elif "wiegand" in msg:
                self._wiegand_bits(msg)
            elif "climate" in msg:
                c = msg["climate"]
                self.climate = {"temperature": float(c["temperature"]),
                                "humidity": float(c["humidity"])}
                self.climate_ready.set()
        except (ValueError, KeyError, TypeError):
            log.count("emulator_bad_lines")
            log.warn("io", "bad line from emulator ignored: %r" % line[:60])
