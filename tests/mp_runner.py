# Runs one agent unit-test file inside the MicroPython unix port and prints
# one result line per test for the pytest plugin in tests/conftest.py.
#   micropython tests/mp_runner.py tests/unit/test_x.py test_a test_b ...
import asyncio
import io
import json
import sys

MARK = "@@mp-result "


def _trace(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return buf.getvalue()


def main():
    path = sys.argv[1]
    folder, _, fname = path.rpartition("/")
    sys.path.insert(0, folder)
    mod = __import__(fname[:-3])
    for name in sys.argv[2:]:
        try:
            res = getattr(mod, name)()
            if hasattr(res, "send"):  # an async test: a coroutine on MicroPython
                asyncio.run(res)
            out = {"name": name, "ok": True}
        except Exception as e:  # noqa: BLE001 - every failure is reported
            out = {"name": name, "ok": False, "error": _trace(e)}
        print(MARK + json.dumps(out))


main()
