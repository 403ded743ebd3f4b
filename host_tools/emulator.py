"""Host side of the emulated board: the door relay, the door-position sensor
and the climate sensor that boards/emulated.json declares. The agent's
hal (agent/hal/emulated.py) drives and reads them over a TCP socket on
loopback, one JSON object per line, as it would drive real pins.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any


class BoardEmulator:
    """Pins and sensors of one emulated board.

    Tests and the demo act on it directly: `set_input` (someone opens the
    door), `wait_output` (did the relay energise?). With `visitor=True` a
    simulated person walks through the door whenever the relay unlocks.
    """

    def __init__(self, board: dict, host: str = "127.0.0.1", port: int = 0, seed: int = 1, visitor: bool = False,
                 observer: Callable[[str, dict], Any] | None = None, climate_period: float = 1.0) -> None:
        self.board = board
        self.host = host
        self.port = port
        self.outputs: dict[int, int] = {}
        self.inputs: dict[int, int] = {}
        self.climate = {"temperature": 21.0, "humidity": 45.0}
        self.visitor = visitor
        self.observer = observer
        self.climate_period = climate_period
        self.connections = 0
        self._rand = random.Random(seed)
        self._writers: set[asyncio.StreamWriter] = set()
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task] = []
        for p in board["peripherals"]:
            if p["type"] == "door":
                # Door starts closed: the sensor reads the "closed" level.
                self.inputs[p["sensor_pin"]] = 1 - p.get("sensor_open_level", 1)

    def _door(self) -> dict | None:
        for p in self.board["peripherals"]:
            if p["type"] == "door":
                return p
        return None

    async def start(self) -> BoardEmulator:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._weather()))
        return self

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for w in list(self._writers):
            w.close()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    # -- what the outside world does to the board -------------------------
    def set_input(self, pin: int, value: int) -> None:
        self.inputs[pin] = value
        self._broadcast({"pin": pin, "value": value})

    def set_door_open(self, is_open: bool) -> None:
        door = self._door()
        level = door.get("sensor_open_level", 1)
        self.set_input(door["sensor_pin"], level if is_open else 1 - level)

    def set_climate(self, temperature: float, humidity: float) -> None:
        self.climate = {"temperature": temperature, "humidity": humidity}
        self._broadcast({"climate": self.climate})

    def relay_energised(self) -> bool | None:
        door = self._door()
        level = self.outputs.get(door["relay_pin"])
        if level is None:
            return None
        return level == (1 if door.get("relay_active_high", True) else 0)

    async def wait_output(self, pin: int, value: int, timeout: float = 5.0) -> None:
        async def until() -> None:
            while self.outputs.get(pin) != value:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)

    # -- the wire to the agent --------------------------------------------
    def _broadcast(self, msg: dict) -> None:
        line = (json.dumps(msg) + "\n").encode()
        for w in list(self._writers):
            try:
                w.write(line)
            except Exception:  # noqa: BLE001 - a gone agent is dropped
                self._writers.discard(w)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        for pin, value in self.inputs.items():
            writer.write((json.dumps({"pin": pin, "value": value}) + "\n").encode())
        writer.write((json.dumps({"climate": self.climate}) + "\n").encode())
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "pin" in msg:
                    self._output(int(msg["pin"]), int(msg["value"]))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def _output(self, pin: int, value: int) -> None:
        old = self.outputs.get(pin)
        self.outputs[pin] = value
        self._changed.set()
        if old != value:
            if self.observer:
                self.observer("pin", {"pin": pin, "value": value})
            door = self._door()
            if self.visitor and door and pin == door["relay_pin"] and self.relay_energised():
                self._tasks.append(asyncio.create_task(self._walk_through()))

    async def _walk_through(self) -> None:
        await asyncio.sleep(0.8)
        self.set_door_open(True)
        await asyncio.sleep(1.5)
        self.set_door_open(False)

    async def _weather(self) -> None:
        # A slow random walk, so telemetry looks alive and differs per sample.
        while True:
            await asyncio.sleep(self.climate_period)
            t = self.climate["temperature"] + self._rand.uniform(-0.2, 0.2)
            h = self.climate["humidity"] + self._rand.uniform(-0.5, 0.5)
            self.set_climate(round(min(max(t, 10), 35), 2), round(min(max(h, 10), 90), 1))
