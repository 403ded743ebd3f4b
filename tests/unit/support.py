# Helpers for agent unit tests that work on MicroPython and CPython alike.
import os
import sys


def tmpdir():
    """A fresh empty folder (MicroPython has no tempfile module)."""
    base = os.getenv("TMPDIR") or "/tmp"
    name = "%s/doorlink-test-%s" % (base, "".join("%02x" % b for b in os.urandom(6)))
    os.mkdir(name)
    return name


def write_json(folder, name, obj_or_text):
    import json
    path = folder + "/" + name
    with open(path, "w") as f:
        f.write(obj_or_text if isinstance(obj_or_text, str) else json.dumps(obj_or_text))
    return path


def raises(exc_type, fn, *args):
    """The exception fn(*args) raises; fails if it raises nothing."""
    try:
        fn(*args)
    except exc_type as e:
        return e
    raise AssertionError("%s not raised" % exc_type.__name__)


async def araises(exc_type, coro):
    try:
        await coro
    except exc_type as e:
        return e
    raise AssertionError("%s not raised" % exc_type.__name__)


MICROPYTHON = sys.implementation.name == "micropython"
