# CloudSolution's server commands, both ways, sans-IO: which Thing command
# each word runs (opendoor, settime, gettime, getnewlog, reboot, setdevlock,
# doorlink's logtail, and the user words of codecs.cs_users), the answers
# that take the protocol's own shape, and, for the bench, the command object that asks
# for a Thing command. A module of its own so the records and replies
# stay readable; codecs.cloudsolution imports it at once (code before
# data: a module loaded at the first command, on a heap the journal has
# fragmented, may find no room, and the link would fail with it).
from agent import records
from agent.codecs.session import Command, shown
from agent.codecs.values import as_int, epoch_wall, is_int, parse_stamp, wall_epoch, wall_text

# Server command word -> the Thing command it runs; the user words are in
# codecs.cs_users. Words known to neither are answered `result: false`
# (not supported), so the server stops waiting.
SERVER_COMMANDS = {"opendoor": "unlock", "settime": "set_time", "gettime": "get_time",
                   "getnewlog": "resend", "reboot": "reboot", "setdevlock": "door_settings",
                   "logtail": "log_tail"}
# logtail is doorlink's own word (docs/protocols/cloudsolution-http.md, 3):
# its fields go to the Thing as they are, which checks them.
LOG_TAIL_FIELDS = ("after", "max")
USER_WORDS = ("setuserinfo", "getuserinfo", "deleteuser", "enableuser", "getuserlist", "cleanuser")
# setdevlock's door sensor (0 none, 1 NC, 2 NO) and the fields read from it;
# any other is answered as not applied (`notapplied`).
SENSORS = ("none", "nc", "no")
DEVLOCK_FIELDS = ("cmd", "opendelay", "doorsensor", "alarmdelay")


def server_command(obj, gmt=0):
    """A server command object -> a Command (id: the word to echo in the
    answer, or (word, context) when the answer needs its request; name:
    the Thing command, None when unsupported)."""
    word = obj.get("cmd")
    if not isinstance(word, str) or not word or len(word) > 32:
        word = "?"   # echoed in the answer: a word the protocol could have sent
    if word in USER_WORDS:
        from agent.codecs import cs_users
        try:
            context, name, payload = cs_users.request(word, obj)
        except ValueError as e:
            return Command(word, None, {"error": "%s refused: %s" % (word, e)})
        return Command((word, context) if word in cs_users.CONTEXT else word, name, payload)
    name = SERVER_COMMANDS.get(word)
    payload = {}
    if name == "unlock":
        payload[records.SOURCE] = "cloud"
        try:
            door = _int_field(obj, ("doornum", "door"), 1, 255, "doornum")
            delay = _int_field(obj, ("delay",), 1, 60, "delay")
        except ValueError as e:
            return Command(word, None, {"error": "opendoor refused: %s" % e})
        payload[records.DOOR] = 1 if door is None else door   # CloudSolution's doors are numbered
        if delay is not None:
            payload["duration_ms"] = delay * 1000
    elif name == "door_settings":
        return _devlock(word, obj)
    elif name == "log_tail":
        for key in LOG_TAIL_FIELDS:
            if key in obj:
                payload[key] = obj[key]
    elif name == "set_time":
        t = wall_epoch(obj.get("cloudtime") or obj.get("time"), gmt, trust_zone=True)
        if t is None:
            return Command(word, None, {"error": "settime without a readable cloudtime"})
        payload["epoch"] = t
    return Command(word, name, payload)


def _int_field(obj, keys, lo, hi, what):
    """The first of `keys` present in obj as an integer lo..hi, or None."""
    for key in keys:
        if key in obj:
            n = as_int(obj[key])
            if n is None or not lo <= n <= hi:
                raise ValueError("%s must be an integer from %d to %d, not %s" % (what, lo, hi, shown(obj[key])))
            return n
    return None


def _devlock(word, obj):
    """setdevlock -> door_settings for door 1; the fields it does not read
    travel in the Command id, to be answered as not applied."""
    payload = {records.DOOR: 1}
    try:
        delay = _int_field(obj, ("opendelay",), 1, 60, "opendelay")
        sensor = _int_field(obj, ("doorsensor",), 0, 2, "doorsensor")
        alarm = _int_field(obj, ("alarmdelay",), 0, 86400, "alarmdelay")
    except ValueError as e:
        return Command(word, None, {"error": "setdevlock refused: %s" % e})
    if delay is not None:
        payload["unlock_ms"] = delay * 1000
    if sensor is not None:
        payload["sensor"] = SENSORS[sensor]
    if alarm:
        payload["held_open_s"] = alarm
    ignored = [k for k in obj if k not in DEVLOCK_FIELDS and isinstance(k, str)][:16]
    if alarm == 0:
        ignored.append("alarmdelay")   # 0 (no alarm) is no held-open time the door takes
    if len(payload) == 1:
        return Command(word, None, {"error": "setdevlock holds nothing this device applies"})
    return Command((word, ",".join(sorted(ignored))[:200]), "door_settings", payload)


def answer(word, context, result, listed):
    """The answer fields of a word whose answer takes the protocol's shape
    (getuserinfo, getuserlist, setdevlock), and where the list stands after
    it (`listed`: the last user id given and how many, see
    cloudsolution.Session); ValueError (the answer's reason) when it
    cannot be given."""
    from agent.codecs import cs_users
    from agent.codecs import user_fields as uf
    if word == "getuserinfo":
        return cs_users.user_answer(uf.user_of(result), context), listed
    if word == "setdevlock":
        out = {}
        for key in result:
            if isinstance(result[key], (str, int, float, bool)):
                out[key] = result[key]
        if context:
            out["notapplied"] = context
        return out, listed
    users = result.get("users") or []
    recs = cs_users.list_records(users)
    given = listed[1]
    last = users[-1].get("id") if users and isinstance(users[-1], dict) else listed[0]
    return ({"count": len(recs), "from": given, "to": given + len(users) - 1, "record": recs},
            (last, given + len(users)))


# -- the server's side (the bench): the same tables, the other way round --------

def command_request(name, payload):
    """The server command object that asks a device to run Thing command
    `name`, or None when CloudSolution has no word for it; ValueError
    (naming the field) for a user field no device could read."""
    if name in ("user_set", "user_get", "user_delete", "user_enable", "user_list", "users_clear"):
        from agent.codecs import cs_users
        return cs_users.server_command(name, payload)
    for word in SERVER_COMMANDS:
        if SERVER_COMMANDS[word] == name:
            out = {"cmd": word}
            if name == "unlock":
                door = payload.get(records.DOOR, 1)
                if not is_int(door) or not 1 <= door <= 255:
                    return None   # CloudSolution numbers doors
                out["doornum"] = door
                ms = payload.get("duration_ms")
                if is_int(ms):
                    if ms % 1000:
                        return None   # opendoor's delay is in whole seconds
                    out["delay"] = ms // 1000
            elif name == "door_settings":
                return _devlock_request(payload)
            elif name == "set_time":
                # An instant (epoch, or a time with a zone) goes as UTC with
                # a Z, which devices honour; a bare wall-clock time as it is.
                epoch = payload.get("epoch")
                if is_int(epoch) and not records.plausible_time(epoch):
                    return None
                if not is_int(epoch):
                    epoch = wall_epoch(payload.get("time"), 0, trust_zone=True)
                    got = parse_stamp(payload.get("time"))
                    if got is None:
                        return None
                    if got[1] is None:
                        out["cloudtime"] = wall_text(got[0])
                        return out
                out["cloudtime"] = epoch_wall(epoch) + "Z"
            elif name == "resend":
                out["stn"] = True
            elif name == "log_tail":
                for key in LOG_TAIL_FIELDS:
                    if key in payload:
                        out[key] = payload[key]
            return out
    return None


def _devlock_request(payload):
    out = {"cmd": "setdevlock"}
    if payload.get(records.DOOR, 1) != 1:
        return None   # setdevlock names no door
    ms = payload.get("unlock_ms")
    if ms is not None:
        if not is_int(ms) or ms % 1000:
            return None
        out["opendelay"] = ms // 1000
    if "sensor" in payload:
        if payload["sensor"] not in SENSORS:
            return None
        out["doorsensor"] = SENSORS.index(payload["sensor"])
    if "held_open_s" in payload:
        if not is_int(payload["held_open_s"]):
            return None
        out["alarmdelay"] = payload["held_open_s"]
    return out if len(out) > 1 else None
