# The architecture and the style, enforced: the import-linter contracts in
# pyproject.toml and ruff both pass, and a contract really fails the run
# when a layer is broken (on a copy of the tree, so nothing here is touched).
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from host_tools.paths import ROOT

BIN = Path(sys.executable).parent


def _run(tool, *args, cwd=ROOT, env=None):
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_import_contracts_hold():
    res = _run("lint-imports", "--no-cache")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_ruff_is_clean():
    res = _run("ruff", "check", "--no-cache", ".")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


# (file, line added, the contract that must catch it)
BREAKS = [
    ("agent/thing.py", "import host_tools.paths", "agent/ runs on a board: it never imports host_tools"),
    ("agent/uplinks/ws.py", "import websockets", "only agent.hal imports runtime-specific modules"),
    ("agent/codecs/json_ws.py", "from agent.uplinks import base", "codecs are sans-IO"),
    ("agent/journal.py", "from agent.uplinks import delivery", "agent layers"),
    ("host_tools/bench/json_ws.py", "from host_tools.bench import xml_ws", "bench: cli > app > protocols"),
    ("host_tools/bench/hub.py", "from host_tools.bench import app", "bench: cli > app > protocols"),
]


@pytest.mark.parametrize("path, line, contract", BREAKS, ids=[b[0] + ": " + b[1] for b in BREAKS])
def test_a_broken_layer_fails_the_run_naming_its_contract(tmp_path, path, line, contract):
    for part in ("agent", "host_tools"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / path, "a") as f:
        f.write("\n" + line + "  # a deliberate break\n")
    # The copy, not the installed tree, is what gets analysed.
    res = _run("lint-imports", "--no-cache", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": str(BIN)})
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-2000:]
    broken = res.stdout[res.stdout.index("Broken contracts"):]
    assert contract in broken, broken[:2000]
