# Tiny logger + counters. MicroPython has no `logging`; a print with a time
# stamp and a component name is what a technician reads on a serial console.
import time

from agent.log_ring import LogRing

LEVELS = {"debug": 10, "info": 20, "warn": 30, "error": 40}
_level = [20]
counters = {}
# What the console showed, for the log_tail command (agent/log_ring.py).
ring = LogRing()


def set_level(name):
    _level[0] = LEVELS[name]


def count(name, n=1):
    counters[name] = counters.get(name, 0) + n


def _stamp():
    t = time.localtime()
    return "%02d:%02d:%02d" % (t[3], t[4], t[5])


def log(level, component, msg):
    if LEVELS[level] >= _level[0]:
        line = "%s %-5s %s: %s" % (_stamp(), level.upper(), component, msg)
        try:
            ring.add(line)   # encodes the line (before it changes anything)
        except UnicodeError:
            # A peer's text holding half a UTF-16 pair (CPython's json.loads
            # makes one; no console encoding takes it): shown escaped.
            line = line.encode("utf-8", "backslashreplace").decode("utf-8")
            ring.add(line)
        print(line)


def debug(component, msg):
    log("debug", component, msg)


def info(component, msg):
    log("info", component, msg)


def warn(component, msg):
    log("warn", component, msg)


def error(component, msg):
    log("error", component, msg)
