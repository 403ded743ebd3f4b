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
from agent.hal import drop_stream


class _Output:
    __slots__ = ("_io", "pin", "_active_high", "level")

    def __init__(self, io, pin, active_high):
        self._io = io
        self.pin = pin
        self._active_high = active_high
        self.level = None

    def on(self):
        self._set(1 if self._active_high else 0)

    def off(self):
        self._set(0 if self._active_high else 1)

    def _set(self, level):
        self.level = level
        self._io.push({"pin": self.pin, "value": level})


class _Input:
    __slots__ = ("_io", "pin")

    def __init__(self, io, pin):
        self._io = io
        self.pin = pin

    def value(self):
        return self._io.inputs.get(self.pin)


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
    __slots__ = ("host", "port", "inputs", "climate", "climate_ready", "_outputs", "_writer")

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.inputs = {}
        self.climate = None
        self.climate_ready = asyncio.Event()
        self._outputs = []
        self._writer = None

    def output(self, pin, active_high=True):
        out = _Output(self, pin, active_high)
        self._outputs.append(out)
        return out

    def input(self, pin):
        return _Input(self, pin)

    def climate_sensor(self, cfg):
        return _Climate(self)

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
                self.inputs[int(msg["pin"])] = int(msg["value"])
            elif "climate" in msg:
                c = msg["climate"]
                self.climate = {"temperature": float(c["temperature"]),
                                "humidity": float(c["humidity"])}
                self.climate_ready.set()
        except (ValueError, KeyError, TypeError):
            log.count("emulator_bad_lines")
            log.warn("io", "bad line from emulator ignored: %r" % line[:60])
