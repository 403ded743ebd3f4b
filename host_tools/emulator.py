# Host side of the emulated board: the door relay, the door-position sensor
# and the climate sensor that boards/emulated.json declares. The agent's
# hal (agent/hal/emulated.py) drives and reads them over a TCP socket on
# loopback, one JSON object per line, as it would drive real pins.
import asyncio
import json
import random


class BoardEmulator:
    """Pins and sensors of one emulated board.

    Tests and the demo act on it directly: `set_input` (someone opens the
    door), `wait_output` (did the relay energise?). With `visitor=True` a
    simulated person walks through the door whenever the relay unlocks.
    """

    def __init__(self, board, host="127.0.0.1", port=0, seed=1, visitor=False,
                 observer=None, climate_period=1.0):
        self.board = board
        self.host = host
        self.port = port
        self.outputs = {}
        self.inputs = {}
        self.climate = {"temperature": 21.0, "humidity": 45.0}
        self.visitor = visitor
        self.observer = observer
        self.climate_period = climate_period
        self.connections = 0
        self._rand = random.Random(seed)
        self._writers = set()
        self._changed = asyncio.Event()
        self._server = None
        self._tasks = []
        for p in board["peripherals"]:
            if p["type"] == "door":
                # Door starts closed: the sensor reads the "closed" level.
                self.inputs[p["sensor_pin"]] = 1 - p.get("sensor_open_level", 1)

    def _door(self):
        for p in self.board["peripherals"]:
            if p["type"] == "door":
                return p
        return None

    async def start(self):
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._weather()))
        return self

    async def stop(self):
        for t in self._tasks:
            t.cancel()
        for w in list(self._writers):
            w.close()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    # -- what the outside world does to the board -------------------------
    def set_input(self, pin, value):
        self.inputs[pin] = value
        self._broadcast({"pin": pin, "value": value})

    def set_door_open(self, is_open):
        door = self._door()
        level = door.get("sensor_open_level", 1)
        self.set_input(door["sensor_pin"], level if is_open else 1 - level)

    def set_climate(self, temperature, humidity):
        self.climate = {"temperature": temperature, "humidity": humidity}
        self._broadcast({"climate": self.climate})

    def relay_energised(self):
        door = self._door()
        level = self.outputs.get(door["relay_pin"])
        if level is None:
            return None
        return level == (1 if door.get("relay_active_high", True) else 0)

    async def wait_output(self, pin, value, timeout=5.0):
        async def until():
            while self.outputs.get(pin) != value:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)

    # -- the wire to the agent --------------------------------------------
    def _broadcast(self, msg):
        line = (json.dumps(msg) + "\n").encode()
        for w in list(self._writers):
            try:
                w.write(line)
            except Exception:  # noqa: BLE001 - a gone agent is dropped
                self._writers.discard(w)

    async def _client(self, reader, writer):
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

    def _output(self, pin, value):
        old = self.outputs.get(pin)
        self.outputs[pin] = value
        self._changed.set()
        if old != value:
            if self.observer:
                self.observer("pin", {"pin": pin, "value": value})
            door = self._door()
            if self.visitor and door and pin == door["relay_pin"] and self.relay_energised():
                self._tasks.append(asyncio.create_task(self._walk_through()))

    async def _walk_through(self):
        await asyncio.sleep(0.8)
        self.set_door_open(True)
        await asyncio.sleep(1.5)
        self.set_door_open(False)

    async def _weather(self):
        # A slow random walk, so telemetry looks alive and differs per sample.
        while True:
            await asyncio.sleep(self.climate_period)
            t = self.climate["temperature"] + self._rand.uniform(-0.2, 0.2)
            h = self.climate["humidity"] + self._rand.uniform(-0.5, 0.5)
            self.set_climate(round(min(max(t, 10), 35), 2), round(min(max(h, 10), 90), 1))
