# The Thing: the one model between peripherals and uplinks. Peripherals fill
# properties and raise events; uplinks translate them to a wire format and
# call commands. Nothing here knows a wire format or a pin.
from agent.errors import CommandError


class Thing:
    __slots__ = ("name", "_props", "_setters", "_commands", "_listeners")

    def __init__(self, name):
        self.name = name
        self._props = {}
        self._setters = {}
        self._commands = {}
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
        self._notify("event", event_type, payload or {})

    def listen(self, callback):
        """callback(kind, name, value) for kind in property/telemetry/event."""
        self._listeners.append(callback)

    def _notify(self, kind, name, value):
        for cb in self._listeners:
            cb(kind, name, value)

    # -- commands -------------------------------------------------------------
    def command(self, name, handler):
        """handler: async (payload dict) -> result dict or None."""
        self._commands[name] = handler

    def commands(self):
        return sorted(self._commands)

    async def call(self, name, payload):
        handler = self._commands.get(name)
        if handler is None:
            raise CommandError("unknown command '%s' (known: %s)"
                               % (name, ", ".join(self.commands())))
        if not isinstance(payload, dict):
            raise CommandError("payload of '%s' must be an object" % name)
        return await handler(payload)
