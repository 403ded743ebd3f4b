# Attendance policy, between the fingerprint reader and the Thing: an
# identified finger is a punch (who, when in local wall-clock time, in or
# out), an enrolment or deletion is an admin log. Both become Thing events
# ("punch", "admin_log") that the uplink journals as records of their own
# kind, so they reach the cloud even if it is down right now.
from agent import clock

MODES = ("toggle", "in", "out")   # how the in/out state of a punch is chosen
# reader's action -> the Action terminals report (XML AdminLog_v2)
ADMIN_ACTIONS = {"enrol": "EnrollFP", "delete": "DeleteFP"}
IN, OUT = 0, 1                    # AttendStat / inout as terminals send it


class Attendance:
    __slots__ = ("thing", "gmt", "mode", "_last")

    def __init__(self, thing, reader, gmt=0, mode="toggle"):
        if mode not in MODES:
            raise ValueError("attendance mode must be one of %s" % ", ".join(MODES))
        self.thing = thing
        self.gmt = gmt
        self.mode = mode
        self._last = {}  # user -> last state, for toggle mode (RAM: a reboot starts with "in")
        reader.on_punch = self.punch
        reader.on_admin = self.admin

    def _state(self, user):
        if self.mode == "in":
            return IN
        if self.mode == "out":
            return OUT
        state = OUT if self._last.get(user) == IN else IN
        self._last[user] = state
        return state

    def punch(self, user, score=None):
        user = str(user)
        record = {"user": user, "time": clock.local_iso(clock.now(), self.gmt), "gmt": self.gmt,
                  "attend": self._state(user), "ap": 1, "action": "FP", "job": 0}
        if score is not None:
            record["score"] = score
        self.thing.emit("punch", record)
        return record

    def admin(self, action, user, admin_id="ADMIN"):
        record = {"admin": admin_id, "user": str(user), "action": ADMIN_ACTIONS.get(action, action),
                  "time": clock.local_iso(clock.now(), self.gmt)}
        self.thing.emit("admin_log", record)
        return record
