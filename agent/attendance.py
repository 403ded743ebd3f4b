# Attendance policy, between the fingerprint reader and the Thing: an
# identified finger is a punch (who, when in local wall-clock time, in or
# out), an enrolment or deletion is an admin log. Both become Thing events
# (records.PUNCH, records.ADMIN_LOG) that the uplink journals as records of
# their own kind, so they reach the cloud even if it is down right now.
from agent import clock
from agent import records as r
from agent.codecs.values import epoch_wall

MODES = ("toggle", "in", "out")   # how the in/out state of a punch is chosen
# reader's action -> the Action terminals report (XML AdminLog_v2)
ADMIN_ACTIONS = {"enrol": "EnrollFP", "delete": "DeleteFP"}


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
            return r.IN
        if self.mode == "out":
            return r.OUT
        state = r.OUT if self._last.get(user) == r.IN else r.IN
        self._last[user] = state
        return state

    def punch(self, user, score=None):
        user = str(user)
        record = {r.USER: user, r.WHEN: epoch_wall(clock.now(), self.gmt), r.GMT: self.gmt,
                  r.ATTEND: self._state(user), r.AP: 1, r.ACTION: "FP", r.JOB: 0}
        if score is not None:
            record[r.SCORE] = score
        self.thing.emit(r.PUNCH, record)
        return record

    def admin(self, action, user, admin_id="ADMIN"):
        record = {r.ADMIN: admin_id, r.USER: str(user), r.ACTION: ADMIN_ACTIONS.get(action, action),
                  r.WHEN: epoch_wall(clock.now(), self.gmt)}
        self.thing.emit(r.ADMIN_LOG, record)
        return record
