# The Thing: the one model between peripherals and uplinks. Peripherals fill
# properties and raise events; uplinks translate them to a wire format and
# call commands. Nothing here knows a wire format or a pin.
#
# Every command declares the fields its payload may hold, so what the cloud
# sends is checked before any handler runs: a field nobody declared, a wrong
# type, a number out of range, an over-long text or a value outside an
# enumeration is refused with a CommandError naming the field. A spec is:
#   (INT, lo, hi)      an integer from lo to hi
#   (TEXT, max_len)    a string of at most max_len characters
#   (ONE_OF, values)   one of these values: an enumeration, never free text
#   (ANY,)             any value; the handler (a property setter) checks it
from agent.errors import CommandError

INT, TEXT, ONE_OF, ANY = "int", "text", "one of", "any"


class Thing:
    __slots__ = ("name", "_props", "_setters", "_commands", "_listeners")

    def __init__(self, name):
        self.name = name
        self._props = {}
        self._setters = {}
        self._commands = {}   # name -> (handler, {field: spec}, required fields)
        self._listeners = []

    # -- properties ---------------------------------------------------------
    def prop(self, name, value=None, setter=None):
        """Declare a property; `setter(value)` makes it writable from the cloud."""
        self._props[name] = value
        if setter is not None:
            self._setters[name] = setter

    def get(self, name):
        return self._props[name]

    def snapshot(self):
        return dict(self._props)

    def update(self, name, value):
        """A peripheral reports a new value; listeners hear of real changes only."""
        if self._props.get(name) != value:
            self._props[name] = value
            self._notify("property", name, value)

    async def write(self, name, value):
        setter = self._setters.get(name)
        if setter is None:
            if name in self._props:
                raise CommandError("property '%s' is read-only" % name)
            raise CommandError("unknown property '%s'" % name)
        await setter(value)

    # -- telemetry and events -------------------------------------------------
    def sample(self, values):
        """A periodic sensor sample: updates properties and is sent as telemetry."""
        for k in values:
            self._props[k] = values[k]
        self._notify("telemetry", None, values)

    def emit(self, event_type, payload=None):
        """Raise an event. False when a listener could not keep it (the
        journal refused it): a door action that cannot be journaled is not
        performed (peripherals/door.py)."""
        return self._notify("event", event_type, payload or {})

    def listen(self, callback):
        """callback(kind, name, value) for kind in property/telemetry/event;
        it returns False when it could not keep what it was told."""
        self._listeners.append(callback)

    def _notify(self, kind, name, value):
        kept = True
        for cb in self._listeners:
            if cb(kind, name, value) is False:
                kept = False
        return kept

    # -- commands -------------------------------------------------------------
    def command(self, name, handler, fields=None, required=()):
        """handler: async (payload dict) -> result dict or None; fields:
        {field: spec} the payload may hold (see the top of this file)."""
        self._commands[name] = (handler, fields or {}, required)

    def commands(self):
        return sorted(self._commands)

    async def call(self, name, payload):
        entry = self._commands.get(name)
        if entry is None:
            raise CommandError("unknown command '%s' (known: %s)"
                               % (name, ", ".join(self.commands())))
        if not isinstance(payload, dict):
            raise CommandError("payload of '%s' must be an object" % name)
        handler, fields, required = entry
        for key in payload:
            spec = fields.get(key)
            if spec is None:
                raise CommandError("'%s' takes no field '%s'%s" % (
                    name, str(key)[:32], " (fields: %s)" % ", ".join(sorted(fields)) if fields else ""))
            _check(name, key, spec, payload[key])
        for key in required:
            if key not in payload:
                raise CommandError("'%s' needs the field '%s'" % (name, key))
        return await handler(payload)


def _check(command, key, spec, value):
    kind = spec[0]
    if kind == INT:
        ok = isinstance(value, int) and not isinstance(value, bool) and spec[1] <= value <= spec[2]
        want = "an integer from %d to %d" % (spec[1], spec[2])
    elif kind == TEXT:
        ok = isinstance(value, str) and len(value) <= spec[1]
        want = "text of at most %d characters" % spec[1]
    elif kind == ONE_OF:
        ok = isinstance(value, (str, int)) and not isinstance(value, bool) and value in spec[1]
        want = "one of %s" % ", ".join(str(v) for v in spec[1])
    else:
        return
    if not ok:
        raise CommandError("'%s': '%s' must be %s" % (command, key, want))
