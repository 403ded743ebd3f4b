# Shared test plumbing.
#
# Agent unit tests (tests/unit/test_*.py) are plain functions with bare
# asserts, so they run twice: under CPython by pytest itself, and inside the
# MicroPython unix port through tests/mp_runner.py, each test reported as
# its own item `test_x[micropython]`.
import ast
import json
import subprocess
from pathlib import Path

import pytest

from host_tools import mpy

ROOT = Path(__file__).resolve().parent.parent
AGENT_TESTS = ROOT / "tests" / "unit"
RUNNER = ROOT / "tests" / "mp_runner.py"
MARK = "@@mp-result "
FILE_TIMEOUT = 120


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
            lib = mpy.build_deploy()  # device libraries, precompiled
            rel = str(self.path.relative_to(ROOT))
            try:
                proc = subprocess.run(
                    [mpy.tool("micropython"), str(RUNNER), rel] + names,
                    cwd=ROOT, env=mpy.micropython_env(ROOT, lib),
                    capture_output=True, text=True, timeout=FILE_TIMEOUT)
                out = proc.stdout + proc.stderr
            except subprocess.TimeoutExpired as e:
                out = "timed out after %ss\n%s" % (FILE_TIMEOUT, e.stdout or "")
            self._output = out
            self._results = {}
            for line in out.splitlines():
                if line.startswith(MARK):
                    r = json.loads(line[len(MARK):])
                    self._results[r["name"]] = r
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


# Figures a test measured (e.g. MicroPython's peak heap), shown at the end of
# every run, not only with -s: they are what a reader of the CI log wants.
FIGURES = []


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
    return FIGURES.append


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("measured")
        for line in FIGURES:
            terminalreporter.write_line(line)
