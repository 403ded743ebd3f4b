# Readable one-line renderings of what the bench sees, for the demo and
# `doorlink watch`-style output: a technician should read it at a glance.
import time


def _clock():
    return time.strftime("%H:%M:%S")


def _kv(payload):
    if not isinstance(payload, dict) or not payload:
        return ""
    return " ".join("%s=%s" % (k, payload[k]) for k in sorted(payload))


def _first(d, *keys):
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return "?"


def render(kind, data):
    """Bench observer event -> a line, or None for what is not worth a line."""
    dev = data.get("device_id", "")
    if kind == "device_online":
        return "%s  ONLINE     %s (from %s)" % (_clock(), dev, data.get("peer", "?"))
    if kind == "device_offline":
        return "%s  OFFLINE    %s" % (_clock(), dev)
    if kind == "telemetry":
        return "%s  telemetry  %s  %s" % (_clock(), dev, _kv(data.get("payload")))
    if kind == "event":
        return "%s  event      %s  %s  %s" % (_clock(), dev, data.get("event_type"),
                                              _kv(data.get("payload")))
    if kind == "command":
        return "%s  command -> %s  %s %s (id %s)" % (_clock(), dev, data.get("command"),
                                                   _kv(data.get("payload")), data.get("id"))
    if kind in ("punch", "admin_log"):
        # XML (TimeLog_v2/AdminLog_v2 tags), HTTP (sendlog record) and JSON
        # (event payload) name the same facts differently.
        p = dict(data.get("payload") or {})
        p.update({k: v for k, v in data.items() if k not in ("payload", "type")})
        user = _first(p, "UserId", "enrollid", "user", "user_id")
        when = _first(p, "PunchTime", "Time", "time")
        proto = p.get("protocol", "json")
        if kind == "punch":
            return "%s  PUNCH      %s  user=%s at %s (%s)" % (_clock(), dev, user, when, proto)
        return "%s  ADMIN LOG  %s  %s user=%s at %s (%s)" % (_clock(), dev, _first(p, "Action", "action"),
                                                          user, when, proto)
    if kind == "error":
        return "%s  error      %s" % (_clock(), data.get("message"))
    return None
