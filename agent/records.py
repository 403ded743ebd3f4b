# The record vocabulary: what a journal record is and what its payloads
# hold, spelled once for everything that handles records - the Thing's
# events that become records, the journal's readers, the session codecs,
# the bench (which stores and broadcasts them) and its live view.
#
# A journal record is the list [id, time, kind, name, value]:
#   id    journal id, 1, 2, 3 ... across reboots (the cloud de-duplicates on it)
#   time  device epoch seconds when it was journaled
#   kind  one of KINDS
#   name  the event type for EVENT records, else None
#   value the payload: a dict whose keys are named below
ID, TIME, KIND, NAME, VALUE = 0, 1, 2, 3, 4

# The times a record (and the device clock a cloud sets) may have. Outside,
# a time is a mistake (milliseconds sent as seconds, a garbled stamp), never
# a correction: records stamped with it could be read by no server, and some
# boards' gmtime dies on it.
EARLIEST = 1577836800   # 2020-01-01T00:00:00Z
LATEST = 4102444800     # 2100-01-01T00:00:00Z


def plausible_time(epoch):
    return isinstance(epoch, int) and not isinstance(epoch, bool) and EARLIEST <= epoch < LATEST

TELEMETRY = "telemetry"   # a sensor sample: {property: reading}
EVENT = "event"           # something happened: name = event type (door_opened ...)
PUNCH = "punch"           # an attendance punch (PUNCH_KEYS)
ADMIN_LOG = "admin_log"   # an enrolment or deletion at the terminal (ADMIN_LOG_KEYS)
KINDS = (TELEMETRY, EVENT, PUNCH, ADMIN_LOG)

# Journals written before 0.2 called admin logs "admin": read them as such.
_OLD_KINDS = {"admin": ADMIN_LOG}

# Payload keys. Punch and admin log times are the site's local wall clock,
# "YYYY-MM-DDTHH:MM:SS", as terminals write them, with the GMT offset beside.
USER = "user"             # who: the template page / enrol id, as text
WHEN = "time"             # local wall-clock time stamp
GMT = "gmt"               # hours east of UTC of WHEN
ATTEND = "attend"         # punch: IN or OUT
AP = "ap"                 # punch: access point (1)
ACTION = "action"         # punch: how (FP); admin log: what (EnrollFP, DeleteFP)
JOB = "job"               # punch: job code (0)
SCORE = "score"           # punch: the matcher's score, when known
ADMIN = "admin"           # admin log: who did it
DOOR = "door"             # door events: the door's name
SOURCE = "source"         # unlocked, access_denied: how (cloud, cloud_access, rex, card ...)
CREDENTIAL = "credential"  # unlocked, access_denied: card number (decimal text) or fingerprint page; never a PIN
REASON = "reason"         # unlocked: why; locked: why (timeout ...); access_denied: the denial reason
DURATION_MS = "duration_ms"  # unlocked: the pulse (absent when held unlocked by normal_open)
OPEN_S = "open_s"         # door_held_open: seconds the door has been open
ACTIVE = "active"         # door_tamper: the tamper input is active (True) or restored (False)
ALARM = "alarm"           # alarm_cleared: forced, held_open or tamper
BY = "by"                 # alarm_cleared, door_mode: who (cloud, schedule, door closed ...)
MODE = "mode"             # door_mode: normal, normal_open or locked
PUNCH_KEYS = (USER, WHEN, GMT, ATTEND, AP, ACTION, JOB, SCORE)
ADMIN_LOG_KEYS = (ADMIN, USER, ACTION, WHEN)
IN, OUT = 0, 1

# The event a device sends with a command's outcome (no protocol has one
# of its own for every command): {id, command, ok, result | error}.
COMMAND_RESULT = "command_result"

# Door event types (docs/door-controller.md section 4): every change of a
# door's state is one of these.
DOOR_OPENED = "door_opened"        # DOOR
DOOR_CLOSED = "door_closed"        # DOOR
DOOR_FORCED = "door_forced"        # DOOR: opened while locked, with no grant and no exit button
DOOR_HELD_OPEN = "door_held_open"  # DOOR, OPEN_S
DOOR_TAMPER = "door_tamper"        # DOOR, ACTIVE
REX = "rex"                        # DOOR: the exit button was pressed
UNLOCKED = "unlocked"              # DOOR, SOURCE, USER, CREDENTIAL, REASON, DURATION_MS
LOCKED = "locked"                  # DOOR, REASON
ACCESS_DENIED = "access_denied"    # DOOR, SOURCE, CREDENTIAL, USER, REASON
ALARM_CLEARED = "alarm_cleared"    # DOOR, ALARM, BY
DOOR_MODE = "door_mode"            # DOOR, MODE, BY
DOOR_EVENTS = (DOOR_OPENED, DOOR_CLOSED, DOOR_FORCED, DOOR_HELD_OPEN, DOOR_TAMPER, REX, UNLOCKED, LOCKED,
               ACCESS_DENIED, ALARM_CLEARED, DOOR_MODE)


def kind(rec):
    """The kind of a record read from a journal (old spellings mapped)."""
    k = rec[KIND]
    return _OLD_KINDS.get(k, k)


def from_thing(notification, name):
    """A Thing notification -> the kind of record it is journaled as, or
    None (property changes travel as the events peripherals raise). Punches
    and admin logs are Thing events that are records of their own kind."""
    if notification == EVENT:
        return name if name == PUNCH or name == ADMIN_LOG else EVENT
    if notification == TELEMETRY:
        return TELEMETRY
    return None
