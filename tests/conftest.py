# Shared test plumbing: the MicroPython harness, the one bench, the fixtures
# every folder uses.
#
# MicroPython. Tests run inside the MicroPython unix port in two ways, both
# reported as items `test_x[micropython]`:
# - agent unit tests (tests/unit/test_*.py) are plain functions with bare
#   asserts, so they run twice: under CPython by pytest itself, and, a whole
#   file in one `micropython` process, through tests/mp_runner.py;
# - MicroPython test modules (tests/mp/test_*.py) run only there (CPython
#   never imports them), each test in its own process. Their parameters are
#   pytest fixtures, resolved here on the host (async ones too: the event
#   loop keeps serving while the process runs) and handed in as JSON (see
#   TO_MICROPYTHON). Module constants configure the run: HEAP_KB (the heap
#   cap, default DEFAULT_HEAP_KB), TIMEOUT_S, STUBS = True (the ESP32
#   stand-ins in tests/mp/stubs - machine, network, dht - come
#   first on MICROPYPATH), PRECOMPILED = True (the agent's .mpy before its
#   sources, as a board loads it), and what fixtures read (BENCH_DEVICES...); they
#   must be literals. A test that returns a string reports it as a measured
#   figure.
# Host tests that need something MicroPython made use the `micropython`
# fixture: `await micropython.run(script, *args, heap_kb=None)`; with
# stubs=True and env={"MACHINE_PIN_LOG": path} it runs on the ESP32
# stand-ins and leaves every pin write of the process's life in that file.
import ast
import asyncio
import inspect
import json
import os
import select
import signal
import subprocess
import sys
import time
import types
from typing import NamedTuple

import pytest

from host_tools import mpy
from host_tools.paths import ROOT
from host_tools.rig import Rig

# A test that stops a process with Ctrl-C (SIGINT) models a terminal. A
# suite started as a background job of a non-interactive shell (`.ci/run &`)
# inherits SIGINT ignored, and so would every process it starts: the
# signal would never arrive. Take the terminal's disposition back here, so
# the children start with the default (an ignored signal survives exec, a
# handler does not).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

AGENT_TESTS = ROOT / "tests" / "unit"
MP_TESTS = ROOT / "tests" / "mp"
STUBS = MP_TESTS / "stubs"
RUNNER = ROOT / "tests" / "mp_runner.py"
MARK = "@@mp-result "
FILE_TIMEOUT = 120      # a whole unit file
TEST_TIMEOUT = 120      # one MicroPython test, unless its module says TIMEOUT_S
DEFAULT_HEAP_KB = 1024  # a MicroPython test's heap, unless its module says HEAP_KB
STOP_TIMEOUT = 30
MAX_ARG = 256           # characters in one micropython command-line argument: the unix port dies at 256


class Ran(NamedTuple):
    code: int | None   # None: killed at its timeout
    out: str           # stdout and stderr, interleaved


class MicroPython:
    """The one way tests run the MicroPython unix port: from the repository
    root, the agent's sources and the precompiled device libraries on
    MICROPYPATH (mpy.micropython_env), the heap capped like a board's."""

    def __init__(self):
        self._lib = None

    def env(self, stubs=False, precompiled=False):
        if self._lib is None:
            self._lib = mpy.build_deploy()
        # precompiled: the agent's .mpy before its sources, as a board loads
        # it (compiling from source takes heap no board spends).
        paths = [self._lib, ROOT] if precompiled else [ROOT, self._lib]
        return mpy.micropython_env(*([STUBS] if stubs else []), *paths)

    async def run(self, script, *args, heap_kb=None, timeout=TEST_TIMEOUT, stdin=b"", stubs=False, env=None,
                  precompiled=False):
        """Run `script` (a path from the repository root) with `args`;
        `stdin` is what it reads there; `stubs`: with the ESP32 stand-ins;
        `precompiled`: the agent from its .mpy; `env`: more environment
        variables. Returns Ran(exit code, output)."""
        args = [str(script)] + [str(a) for a in args]
        for a in args:
            # The unix port dies on a longer one ("FATAL: uncaught NLR").
            assert len(a) < MAX_ARG, "a micropython argument of %d characters: pass it on stdin" % len(a)
        heap = ["-X", "heapsize=%dk" % heap_kb] if heap_kb else []
        proc = await asyncio.create_subprocess_exec(
            mpy.tool("micropython"), *heap, *args, cwd=ROOT, env={**self.env(stubs, precompiled), **(env or {})},
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        proc.stdin.write(stdin)
        proc.stdin.close()
        chunks = []

        async def drain():
            while chunk := await proc.stdout.read(65536):
                chunks.append(chunk)
            return await proc.wait()

        try:
            code = await asyncio.wait_for(drain(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            chunks.append(("\n[killed: no end within %ss]\n" % timeout).encode())
            code = None
        return Ran(code, b"".join(chunks).decode("utf-8", "replace"))


MICROPYTHON = MicroPython()


def results(out):
    """{test name: its result} from the runner's marked lines."""
    return {r["name"]: r for r in (json.loads(line[len(MARK):]) for line in out.splitlines()
                                   if line.startswith(MARK))}


@pytest.fixture
def micropython():
    return MICROPYTHON


# -- in parallel (pytest-xdist, `-n auto` in pyproject.toml) -------------------
# Most of the suite waits: on agents' timers, on subprocesses, on sockets.
# One test at a time kept 2 CPUs about 70% idle, so the run uses two
# workers per CPU. A test file goes whole to one worker (--dist loadfile:
# a unit file's MicroPython half is one process, and module fixtures are
# made once), so a run of one file stays in this process, as do -s and
# --pdb with `-n 0`. PYTEST_XDIST_AUTO_NUM_WORKERS=N sets the count.
WORKERS_PER_CPU = 2


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config):
    env = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if env and env.isdigit():
        return int(env)
    files = {arg.split("::")[0] for arg in config.args}
    if len(files) == 1 and files.pop().endswith(".py"):
        return 0
    return WORKERS_PER_CPU * len(os.sched_getaffinity(0))


# Files whose tests take over 40 s together (measured one test at a time),
# handed out first: workers take files in collection order (pyproject.toml:
# --no-loadscope-reorder), and a long file taken last is the run's tail.
# A stale list costs time only; the order of the rest is unchanged.
LONGEST = ("mp/test_journal_powercut.py", "mp/test_users_powercut.py", "host/test_fleet.py",
           "e2e/test_terminal.py", "e2e/test_faults.py")


def pytest_collection_modifyitems(items):
    first = {ROOT / "tests" / name: i for i, name in enumerate(LONGEST)}
    items.sort(key=lambda item: first.get(item.path, len(first)))


def pytest_configure(config):
    # Files every worker would otherwise build the first time it needs them,
    # each writing them in place while another may be loading them: built
    # once here, before any worker starts (later builds find them fresh).
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        from host_tools.virtual_board import firmware_module
        try:
            mpy.build_deploy()
            firmware_module()
        except RuntimeError:
            pass   # a source mpy-cross rejects: the tests that load it fail, naming it


# -- agent unit tests, a second time under MicroPython -------------------------
def pytest_collect_file(parent, file_path):
    if (file_path.parent == AGENT_TESTS and file_path.name.startswith("test_")
            and file_path.suffix == ".py"):
        return MicroPythonFile.from_parent(parent, path=file_path, name=file_path.name + "::micropython")
    return None


class MicroPythonFile(pytest.File):
    _results = None
    _output = ""

    def collect(self):
        tree = ast.parse(self.path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                yield MicroPythonItem.from_parent(self, name=node.name + "[micropython]", fn=node.name)

    def results(self):
        if self._results is None:
            names = [item.fn for item in self.collect()]
            ran = asyncio.run(MICROPYTHON.run(RUNNER, self.path.relative_to(ROOT), *names, timeout=FILE_TIMEOUT))
            self._output = ran.out
            self._results = results(ran.out)
        return self._results


class MicroPythonFailure(Exception):
    pass


class MicroPythonItem(pytest.Item):
    def __init__(self, *, fn, **kw):
        super().__init__(**kw)
        self.fn = fn

    def runtest(self):
        res = self.parent.results().get(self.fn)
        if res is None:
            raise MicroPythonFailure("no result from MicroPython (crashed?):\n" + self.parent._output[-3000:])
        if not res["ok"]:
            raise MicroPythonFailure(res["error"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return "under micropython:\n" + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, "%s[micropython]" % self.fn


# -- MicroPython test modules (tests/mp/test_*.py) ------------------------------
def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == MP_TESTS:
        return MicroPythonModule.from_parent(parent, path=module_path)
    return None


# How a fixture's value reaches a MicroPython test: as JSON. Values that are
# JSON already pass as they are; anything else must be named here.
TO_MICROPYTHON = {
    "tmp_path": str,
    "bench": lambda b: {"url": b.url, "http_url": b.http_url, "port": b.port},
    "pki": lambda p: {"ca": p["ca"], "wrong": p["wrong"]},
    "reader": lambda r: {"path": r.path, "control": r.control},
}


def _json_arg(name, value):
    if name in TO_MICROPYTHON:
        return TO_MICROPYTHON[name](value)
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        pass
    pytest.fail("fixture %r (%s) cannot be handed to a MicroPython test: it is not JSON; say how in "
                "TO_MICROPYTHON (tests/conftest.py)" % (name, type(value).__name__), pytrace=False)


def _constants(tree):
    """The module's literal constants (NAME = literal, names of earlier
    constants allowed inside), as fixtures read them from request.module."""
    found = {}

    class Names(ast.NodeTransformer):
        def visit_Name(self, node):
            return ast.Constant(found[node.id]) if node.id in found else node

    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(Names().visit(node.value))
            except ValueError:
                pass  # not a literal: MicroPython's business only
    return found


class MicroPythonModule(pytest.Module):
    """A module whose tests run inside MicroPython. Its `obj` is a stand-in:
    the file's literal constants and, per test, an async function taking
    the test's own parameters (so pytest resolves them as fixtures) that
    runs the test in a micropython process."""

    def _getobj(self):
        tree = ast.parse(self.path.read_text(), str(self.path))
        name = "micropython:" + self.path.stem
        mod = types.ModuleType(name)
        mod.__dict__.update(_constants(tree))
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
                test = self._stand_in(node.name, params)
                test.__module__ = name
                setattr(mod, test.__name__, test)
        return mod

    def _stand_in(self, fn, params):
        async def test(**fixtures):
            await self.run_test(fn, fixtures)
        test.__name__ = test.__qualname__ = fn + "[micropython]"
        test.__signature__ = inspect.Signature(
            [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY) for p in params])
        return test

    async def run_test(self, fn, fixtures):
        args = {name: _json_arg(name, value) for name, value in fixtures.items()}
        mod = self.obj
        # On stdin: a command-line argument could be too long (MAX_ARG).
        ran = await MICROPYTHON.run(RUNNER, self.path.relative_to(ROOT), fn, "-", stdin=json.dumps(args).encode(),
                                    heap_kb=getattr(mod, "HEAP_KB", DEFAULT_HEAP_KB),
                                    timeout=getattr(mod, "TIMEOUT_S", TEST_TIMEOUT),
                                    stubs=getattr(mod, "STUBS", False),
                                    precompiled=getattr(mod, "PRECOMPILED", False))
        print("\n".join(line for line in ran.out.splitlines() if not line.startswith(MARK)))  # for a failure
        res = results(ran.out).get(fn)
        if res is None:
            pytest.fail("no result from MicroPython (exit code %s):\n%s" % (ran.code, ran.out[-3000:]),
                        pytrace=False)
        if not res["ok"]:
            pytest.fail("under micropython:\n" + res["error"], pytrace=False)
        if res.get("figure"):
            _MEASURED.append(res["figure"])


# -- the system under test ------------------------------------------------------
@pytest.fixture
def rig_options():
    """Rig() arguments for what the test module does not name; a folder's
    conftest may give its own (tests/e2e: its device, token and site)."""
    return {}


@pytest.fixture
async def rig(tmp_path, request, rig_options):
    """The system under test (host_tools/rig.py), in tmp_path: tests start
    its bench (the `bench` fixture does) and its agent (start_agent(runtime=
    ...)). Its device and token are the test module's DEVICE and TOKEN, its
    site overrides the module's SITE; without a DEVICE it has no device.
    `.events` collects what its bench's observer sees. Everything stops at
    the end, and the agent's output is printed for a failure's report."""
    opts = {"device_id": None, **rig_options}
    for const, key in (("DEVICE", "device_id"), ("TOKEN", "token"), ("SITE", "site")):
        if hasattr(request.module, const):
            opts[key] = getattr(request.module, const)
    events = []
    r = Rig(tmp_path, observer=lambda kind, data: events.append((kind, data)), **opts)
    r.events = events
    try:
        yield r
    finally:
        try:
            await asyncio.wait_for(r.stop(), STOP_TIMEOUT)
        finally:
            if r.lines:
                print("---- agent output ----\n" + r.output(None))


@pytest.fixture
async def bench(rig, request):
    """A real bench on 127.0.0.1 (port 0) with a fresh SQLite file: the
    rig's, holding the rig's device (if any) and the test module's
    BENCH_DEVICES ({device_id: token}); with BENCH_TLS = True it serves
    TLS with the `pki` certificate. `.events` is every observer event as
    (kind, data), `.db_path` the SQLite file."""
    tls = request.getfixturevalue("pki")["server"] if getattr(request.module, "BENCH_TLS", False) else None
    db = rig.workdir / "bench.sqlite3"
    b = await rig.start_bench(db=db, ssl_context=tls)
    for device_id, token in getattr(request.module, "BENCH_DEVICES", {}).items():
        b.store.add_device(device_id, token)
    b.events = rig.events
    b.db_path = db
    return b


class Reader(NamedTuple):
    proc: subprocess.Popen
    path: str      # the pty a ZFM client opens
    control: str   # HOST:PORT of its control port (commands: host_tools/emulate.py)


@pytest.fixture
def reader():
    """`doorlink emulate reader --json` in its own process, as a technician
    starts it; stopped with `quit` (killed if that fails)."""
    proc = subprocess.Popen([sys.executable, "-m", "host_tools.cli", "emulate", "reader", "--json"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not select.select([proc.stdout], [], [], 0.1)[0]:
            assert time.monotonic() < deadline, "the reader emulator said nothing within 20s"
        line = proc.stdout.readline()
        assert line, "the reader emulator ended at start (exit code %s)" % proc.wait(5)
        info = json.loads(line)
        yield Reader(proc, info["path"], info["control"])
    finally:
        try:
            proc.stdin.write("quit\n")
            proc.stdin.close()
            proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


# -- shared fixtures and figures -------------------------------------------------
# Figures a test measured (e.g. MicroPython's peak heap), shown at the end of
# every run, not only with -s: they are what a reader of the CI log wants.
# A test's figures travel on its report (user_properties, which pytest-xdist
# carries from a worker to the process that prints the summary): _MEASURED
# holds them until the report of the phase that measured them is made.
FIGURES = []
_MEASURED = []


@pytest.fixture
def pki(tmp_path):
    """A throwaway CA (trustme): `server` is an SSL context with a certificate
    for "localhost" signed by it; `ca` its PEM file, `wrong` another CA's."""
    import ssl

    import trustme
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    return {"server": ctx, "ca": str(tmp_path / "ca.pem"), "wrong": str(tmp_path / "other-ca.pem")}


@pytest.fixture
def figure():
    return _MEASURED.append


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    report.user_properties.extend(("figure", line) for line in _MEASURED)
    _MEASURED.clear()


def pytest_runtest_logreport(report):
    FIGURES.extend(value for key, value in report.user_properties if key == "figure")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("measured")
        for line in FIGURES:
            terminalreporter.write_line(line)
