"""Host side of the emulated board: each door's relay, door-position sensor
(NC or NO contact), exit button and tamper switch, and the climate sensor
that boards/emulated.json declares. The agent's
hal (agent/hal/emulated.py) drives and reads them over a TCP socket on
loopback, one JSON object per line, as it would drive real pins.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from typing import Any


class BoardEmulator:
    """Pins and sensors of one emulated board.

    Tests and the demo act on it directly: `set_door_open` (someone opens
    the door), `press_rex`, `set_tamper`, `wait_output` (did the relay
    energise?). Methods that act on a door take its name; None means the
    board's first door. With `visitor=True` a simulated person walks through
    a door whenever its lock opens.
    """

    def __init__(self, board: dict, host: str = "127.0.0.1", port: int = 0, seed: int = 1, visitor: bool = False,
                 observer: Callable[[str, dict], Any] | None = None, climate_period: float = 1.0) -> None:
        self.board = board
        self.host = host
        self.port = port
        self.outputs: dict[int, int] = {}
        # Every level the agent drove, as a logic analyser on the pins would
        # show it: (time.monotonic(), pin, level), from the emulator's start,
        # across agent restarts (the safe-boot tests read it).
        self.writes: list[tuple[float, int, int]] = []
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
        self._wiegand_sent: dict[str, float] = {}   # reader name -> loop time of its last frame
        for p in board["peripherals"]:
            if p["type"] == "door":
                # Every door starts closed, its exit button released, its
                # tamper switch quiet.
                self._set_door_inputs(p, is_open=False, rex=False, tamper=False)

    def _doors(self) -> list[dict]:
        return [p for p in self.board["peripherals"] if p["type"] == "door"]

    def _door(self, name: str | None = None) -> dict | None:
        for p in self._doors():
            if name is None or p.get("name", "door") == name:
                return p
        if name is not None:
            raise KeyError(f"the board has no door {name!r}")
        return None

    def _set_door_inputs(self, door: dict, is_open: bool | None = None, rex: bool | None = None,
                         tamper: bool | None = None) -> None:
        # Dry contacts with pull-ups, as docs/door-controller.md wires them:
        # NC reads 1 when open, NO reads 0; a pressed exit button and an
        # active tamper switch read their configured levels.
        levels = []
        if is_open is not None and door.get("sensor_pin") is not None and door.get("sensor", "nc") != "none":
            levels.append((door["sensor_pin"], int(is_open == (door.get("sensor", "nc") == "nc"))))
        if rex is not None and door.get("rex_pin") is not None:
            level = door.get("rex_level", 0)
            levels.append((door["rex_pin"], level if rex else 1 - level))
        if tamper is not None and door.get("tamper_pin") is not None:
            level = door.get("tamper_level", 1)
            levels.append((door["tamper_pin"], level if tamper else 1 - level))
        for pin, level in levels:
            self.inputs[pin] = level
            self._broadcast({"pin": pin, "value": level})

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

    def set_door_open(self, is_open: bool, door: str | None = None) -> None:
        self._set_door_inputs(self._door(door), is_open=is_open)

    def set_rex(self, pressed: bool, door: str | None = None) -> None:
        self._set_door_inputs(self._door(door), rex=pressed)

    def press_rex(self, door: str | None = None, hold_s: float = 0.3) -> None:
        """Press the exit button and let it go after `hold_s` (a person's
        press, longer than the agent's debounce)."""
        self.set_rex(True, door)

        async def release() -> None:
            await asyncio.sleep(hold_s)
            self.set_rex(False, door)
        self._tasks.append(asyncio.create_task(release()))

    def set_tamper(self, active: bool, door: str | None = None) -> None:
        self._set_door_inputs(self._door(door), tamper=active)

    # -- Wiegand readers: what a card reader or keypad sends on D0/D1 -------
    def _reader(self, name: str) -> dict:
        for p in self.board["peripherals"]:
            if p["type"] == "wiegand" and p.get("name", "wiegand") == name:
                return p
        raise KeyError(f"the board has no Wiegand reader {name!r}")

    async def send_wiegand_bits(self, reader: str, bits: str) -> None:
        """One frame as raw bits ("0101..."), noise or not. Waits until the
        reader's frame_gap_ms has passed twice over since the previous frame
        sent to it: the agent stamps bits when a line arrives, and a line
        can reach it late, so one gap alone could glue two frames."""
        r = self._reader(reader)
        loop = asyncio.get_running_loop()
        last = self._wiegand_sent.get(reader)
        if last is not None:
            wait = last + 2 * r.get("frame_gap_ms", 100) / 1000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        self._broadcast({"wiegand": [r["d0_pin"], r["d1_pin"]], "bits": bits})
        self._wiegand_sent[reader] = loop.time()

    async def swipe_card(self, reader: str, number: int, bits: int = 26) -> None:
        """A card presented: number = facility << 16 | card for 26 bits,
        the 32 or 35 data bits for 34 and 37."""
        await self.send_wiegand_bits(reader, wiegand_card(number, bits))

    async def press_keys(self, reader: str, keys: str, bits: int = 4) -> None:
        """Keys pressed one by one ("0"-"9", "*", "#"), a frame each."""
        for key in keys:
            await self.send_wiegand_bits(reader, wiegand_key(key, bits))

    def set_climate(self, temperature: float, humidity: float) -> None:
        self.climate = {"temperature": temperature, "humidity": humidity}
        self._broadcast({"climate": self.climate})

    def relay_energised(self, door: str | None = None) -> bool | None:
        """Whether the door's relay is energised; None before the agent set it."""
        d = self._door(door)
        level = self.outputs.get(d["relay_pin"])
        if level is None:
            return None
        return level == (1 if d.get("relay_active_high", True) else 0)

    def unlocked(self, door: str | None = None) -> bool | None:
        """Whether the door's lock is open: energised for a strike, not
        energised for a lock that opens without power (unlock_energised false)."""
        energised = self.relay_energised(door)
        if energised is None:
            return None
        return energised == self._door(door).get("unlock_energised", True)

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
        self.writes.append((time.monotonic(), pin, value))
        old = self.outputs.get(pin)
        self.outputs[pin] = value
        self._changed.set()
        if old != value:
            if self.observer:
                self.observer("pin", {"pin": pin, "value": value})
            for door in self._doors():
                name = door.get("name", "door")
                if self.visitor and pin == door["relay_pin"] and self.unlocked(name):
                    self._tasks.append(asyncio.create_task(self._walk_through(name)))

    async def _walk_through(self, door: str) -> None:
        await asyncio.sleep(0.8)
        self.set_door_open(True, door)
        await asyncio.sleep(1.5)
        self.set_door_open(False, door)

    async def _weather(self) -> None:
        # A slow random walk, so telemetry looks alive and differs per sample.
        while True:
            await asyncio.sleep(self.climate_period)
            t = self.climate["temperature"] + self._rand.uniform(-0.2, 0.2)
            h = self.climate["humidity"] + self._rand.uniform(-0.5, 0.5)
            self.set_climate(round(min(max(t, 10), 35), 2), round(min(max(h, 10), 90), 1))


# Parity windows of the card formats (docs/door-controller.md section 6):
# data bits in the even window after bit 1, and in the odd window before the last.
_CARD_WINDOWS = {26: 12, 34: 16, 37: 18}
KEYS = "0123456789*#"


def wiegand_card(number: int, nbits: int = 26) -> str:
    """The bits a reader sends for a card: even parity, data, odd parity."""
    if nbits not in _CARD_WINDOWS:
        raise ValueError(f"Wiegand cards are 26, 34 or 37 bits, not {nbits}")
    if not 0 <= number < 1 << (nbits - 2):
        raise ValueError(f"card number {number} does not fit {nbits} bits")
    data = format(number, f"0{nbits - 2}b")
    window = _CARD_WINDOWS[nbits]
    even = data[:window].count("1") % 2
    odd = 1 - data[-window:].count("1") % 2
    return f"{even}{data}{odd}"


def wiegand_key(key: str, nbits: int = 4) -> str:
    """The bits a keypad sends for one key: 4 bits, or 8 with the
    complement in the high nibble."""
    if len(key) != 1 or key not in KEYS:
        raise ValueError(f"a keypad key is one of {KEYS}, not {key!r}")
    k = KEYS.index(key)
    if nbits == 4:
        return format(k, "04b")
    if nbits == 8:
        return format((k ^ 0xF) << 4 | k, "08b")
    raise ValueError(f"keypad frames are 4 or 8 bits, not {nbits}")
