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
SOURCE = "source"         # door_unlocked: who asked (cloud, cloud_access, ...)
PUNCH_KEYS = (USER, WHEN, GMT, ATTEND, AP, ACTION, JOB, SCORE)
ADMIN_LOG_KEYS = (ADMIN, USER, ACTION, WHEN)
IN, OUT = 0, 1

# The event a device sends with a command's outcome (no protocol has one
# of its own for every command): {id, command, ok, result | error}.
COMMAND_RESULT = "command_result"

# Door event types, in the order CloudSolution numbers them.
DOOR_EVENTS = ("door_closed", "door_opened", "exit_button", "door_unlocked", "door_locked",
               "forced_open", "tamper", "alarm")


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
