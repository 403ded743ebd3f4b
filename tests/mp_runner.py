# Runs tests inside the MicroPython unix port and prints one result line
# per test for the pytest plugin in tests/conftest.py:
#   micropython tests/mp_runner.py tests/unit/test_x.py test_a test_b ...
#   echo '{"tmp_path": "/tmp/..."}' | micropython tests/mp_runner.py tests/mp/test_y.py test_c -
# A test name followed by "-" takes its keyword arguments (the fixtures the
# host resolved) as one JSON object on stdin. A test that returns a string
# reports it as a measured figure.
import asyncio
import io
import json
import sys

MARK = "@@mp-result "


def _trace(exc):
    buf = io.StringIO()
    sys.print_exception(exc, buf)
    return buf.getvalue()


def _calls(words):
    """[(test name, its keyword arguments)] from the command line."""
    calls = []
    for word in words:
        if word == "-":
            calls[-1] = (calls[-1][0], json.loads(sys.stdin.read()))
        else:
            calls.append((word, {}))
    return calls


def main():
    path = sys.argv[1]
    folder, _, fname = path.rpartition("/")
    sys.path.insert(0, folder)
    mod = __import__(fname[:-3])
    for name, kwargs in _calls(sys.argv[2:]):
        try:
            res = getattr(mod, name)(**kwargs)
            if hasattr(res, "send"):  # an async test: a coroutine on MicroPython
                res = asyncio.run(res)
            out = {"name": name, "ok": True}
            if isinstance(res, str):
                out["figure"] = res
        except Exception as e:  # noqa: BLE001 - every failure is reported
            out = {"name": name, "ok": False, "error": _trace(e)}
        print(MARK + json.dumps(out))


main()
