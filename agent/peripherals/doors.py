# The doors of one board, and the Thing commands that reach them: unlock,
# lock, door_mode, clear_alarm and door_settings (the XML protocol's
# LockControl modes are mapped onto these by its codec, codecs/xml_commands).
# A command names its door by name or by its number from 1 in the board's
# order (the protocols number doors); it may leave the door out only when
# the board has one: a guess could open the wrong door.
from agent import records as r
from agent.errors import CommandError
from agent.peripherals.door import MAX_HELD_OPEN_S, MAX_UNLOCK_MS, MIN_UNLOCK_MS, MODES, NORMAL_OPEN
from agent.thing import ANY, INT, ONE_OF

# Who may ask for an unlock through a command: the cloud, or a cloud's grant
# for a punch. An enumeration, never free text: a command must not pass
# itself off as a fingerprint or an exit button in the audit trail.
SOURCES = ("cloud", "cloud_access")
SENSORS = ("nc", "no", "none")
_DOOR = (ANY,)   # a name or a number: checked by find()


class Doors:
    __slots__ = ("thing", "doors")

    def __init__(self, thing):
        self.thing = thing
        self.doors = []
        thing.command("unlock", self._unlock, {r.DOOR: _DOOR, r.DURATION_MS: (INT, MIN_UNLOCK_MS, MAX_UNLOCK_MS),
                                               r.SOURCE: (ONE_OF, SOURCES)})
        thing.command("lock", self._lock, {r.DOOR: _DOOR})
        thing.command("door_mode", self._mode, {r.DOOR: _DOOR, r.MODE: (ONE_OF, MODES)}, (r.MODE,))
        thing.command("clear_alarm", self._clear, {r.DOOR: _DOOR})
        thing.command("door_settings", self._settings,
                      {r.DOOR: _DOOR, "unlock_ms": (INT, MIN_UNLOCK_MS, MAX_UNLOCK_MS),
                       "held_open_s": (INT, 1, MAX_HELD_OPEN_S), "sensor": (ONE_OF, SENSORS)})

    def add(self, door):
        self.doors.append(door)

    def get(self, name):
        """The door called `name`, or None."""
        for door in self.doors:
            if door.name == name:
                return door
        return None

    def find(self, payload):
        """The door a command names; CommandError when it names none."""
        ref = payload.get(r.DOOR)
        doors = self.doors
        if ref is None and len(doors) == 1:
            return doors[0]
        door = None
        if isinstance(ref, str):
            door = self.get(ref)
        elif isinstance(ref, int) and not isinstance(ref, bool) and 1 <= ref <= len(doors):
            door = doors[ref - 1]
        if door is None:
            # Only a name or a number is shown back: anything else the cloud
            # sent could be as large as its frame.
            shown = ref[:32] if isinstance(ref, str) else ref if isinstance(ref, int) else "of that type"
            raise CommandError("%s: 'door' must name one of the doors (%s) or give its number 1-%d"
                               % ("no door given" if ref is None else "no door %s" % shown,
                                  ", ".join(d.name for d in doors), len(doors)))
        return door

    async def _unlock(self, payload):
        ms = await self.find(payload).grant(payload.get(r.SOURCE, "cloud"), duration_ms=payload.get(r.DURATION_MS))
        return {"lock": "unlocked", r.DURATION_MS: ms}

    async def _lock(self, payload):
        door = self.find(payload)
        if not door.lock():
            raise CommandError("door %s is held unlocked (mode %s): door_mode normal or locked relocks it"
                               % (door.name, NORMAL_OPEN))
        return {"lock": "locked"}

    async def _mode(self, payload):
        return {r.MODE: await self.find(payload).set_mode(payload[r.MODE])}

    async def _clear(self, payload):
        return {"alarms": self.find(payload).clear_alarms()}

    async def _settings(self, payload):
        door = self.find(payload)
        cfg = door.cfg
        if "sensor" in payload and payload["sensor"] != cfg["sensor"]:
            # The sensor's pin and pull are claimed at start: a new contact
            # type is a board file change and a restart.
            raise CommandError("'sensor' of door %s is set in the board file (%s), not at run time"
                               % (door.name, cfg["sensor"]))
        if "unlock_ms" in payload:
            await door.set_unlock_ms(payload["unlock_ms"])
        if "held_open_s" in payload:
            door.set_held_open_s(payload["held_open_s"])
        return {"unlock_ms": self.thing.get(door.p_unlock_ms), "held_open_s": cfg["held_open_s"],
                "sensor": cfg["sensor"]}
