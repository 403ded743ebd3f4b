"""`doorlink install-service`: the agent as a systemd service on a Pi.

One real install, staged under a folder (`--root`), is shared by the module:
a real venv made by pip from the registries with the `pi` extra only. The
unit it writes is checked by systemd-analyze, and the INSTALLED agent is
started once as systemd would, to hear it speak the notify protocol."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_systemd import NotifySocket

from agent.config import load_board
from host_tools import cli, install_service
from host_tools.emulator import BoardEmulator
from host_tools.paths import BOARDS, ROOT
from host_tools.runner import BoardSession

DEVICE = "pi-service"
TOKEN = "tok_pi_service"
PYTHON = "/opt/doorlink/venv/bin/python"
UNIT = "etc/systemd/system/doorlink-agent.service"


def _board(folder: Path, **changes) -> Path:
    """The emulated board as a Pi service runs it: CPython, its journal in
    the unit's state folder."""
    board = json.loads((BOARDS / "emulated.json").read_text())
    board.pop("heap_kb")
    board.update(runtimes=["cpython"], journal=dict(board["journal"], path="/var/lib/doorlink/journal"))
    board.update(changes)
    path = folder / "board.json"
    path.write_text(json.dumps(board))
    return path


def _site(folder: Path, **changes) -> Path:
    path = folder / "site.json"
    path.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN, **changes}))
    return path


def _doorlink(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host_tools.cli", *argv], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, check=False)


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """`doorlink install-service --root DIR`, run once: DIR."""
    src = tmp_path_factory.mktemp("src")
    root = tmp_path_factory.mktemp("staging") / "root"
    res = _doorlink("install-service", "--board", str(_board(src)), "--site", str(_site(src)), "--root", str(root))
    print(res.stdout, res.stderr)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "systemctl enable --now doorlink-agent" in res.stdout   # what is left to do on the Pi
    return root


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_unit_written_is_one_systemd_accepts(staged):
    unit = staged / UNIT
    text = unit.read_text()
    assert (f"ExecStart={PYTHON} -m agent.main --board /etc/doorlink/board.json "
            "--site /etc/doorlink/site.json") in text.splitlines()
    assert "User=doorlink" in text.splitlines() and "Type=notify" in text.splitlines()
    res = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                         check=False)
    # The one thing allowed: the venv is at its Pi path only once the staging is copied there.
    staged_only = f"doorlink-agent.service: Command {PYTHON} is not executable: No such file or directory"
    rest = [line for line in res.stderr.splitlines() if line != staged_only]
    assert not rest, res.stderr
    assert res.returncode == (1 if staged_only in res.stderr else 0), res.stderr
    assert os.access(staged / PYTHON.lstrip("/"), os.X_OK)   # ... where it is, staged


def test_the_venv_holds_the_agent_from_its_own_copy_and_not_the_host_tools(staged):
    python = staged / PYTHON.lstrip("/")
    probe = ("import json, importlib.util, agent.main, gpiozero; print(json.dumps({'agent': agent.main.__file__, "
             "'aiohttp': importlib.util.find_spec('aiohttp') is not None}))")
    res = subprocess.run([str(python), "-I", "-c", probe], capture_output=True, text=True, timeout=60, cwd="/",
                         check=False)
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)
    assert not found["aiohttp"]
    # Not editable: the service runs a copy, not the checkout.
    assert Path(found["agent"]).is_relative_to(staged / "opt/doorlink/venv"), found


def test_the_site_file_holding_the_token_is_not_world_readable(staged):
    site = staged / "etc/doorlink/site.json"
    assert stat.S_IMODE(site.stat().st_mode) == 0o640
    assert json.loads(site.read_text())["token"] == TOKEN
    assert stat.S_IMODE((staged / "etc/doorlink/board.json").stat().st_mode) == 0o644


async def test_the_installed_agent_says_ready_and_feeds_the_watchdog(staged, rig, bench, tmp_path):
    """Started as systemd starts it (its venv's python, the installed files,
    NOTIFY_SOCKET and WATCHDOG_USEC set), from a folder away from the
    checkout. Only the bench URL, the emulator and the journal folder
    differ: on this machine they are not where a Pi has them."""
    bench.store.add_device(DEVICE, TOKEN)
    board = staged / "etc/doorlink/board.json"
    emulator = await BoardEmulator(load_board(str(board))).start()
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    argv = [str(staged / PYTHON.lstrip("/")), "-m", "agent.main", "--board", str(board),
            "--site", str(staged / "etc/doorlink/site.json"), "--server", rig.server_url(),
            "--emulator", f"{emulator.host}:{emulator.port}", "--journal", str(tmp_path / "journal")]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONUNBUFFERED="1", NOTIFY_SOCKET=str(tmp_path / "notify.sock"), WATCHDOG_USEC="400000")
    lines: list[str] = []
    session = await BoardSession(argv, env, str(tmp_path), lines.append, emulator, None).start()
    try:
        first = await sock.next()
        assert first[0] == "READY=1" and "STATUS=running" in first, first
        for _ in range(3):
            assert await sock.next(5) == ["WATCHDOG=1"]
    finally:
        await session.stop()
        sock.close()
        print("\n".join(lines[-30:]))


def _main(capsys, *argv: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as ended:
        cli.main(["install-service", *argv])
    out = capsys.readouterr()
    return ended.value.code, out.out + out.err


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_dry_run_prints_every_step_and_changes_nothing(tmp_path, capsys):
    board, site = _board(tmp_path), _site(tmp_path)
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/group").write_text("root:x:0:\ngpio:x:997:\n")   # the staged system has gpio, not dialout
    code, out = _main(capsys, "--board", str(board), "--site", str(site), "--root", str(root), "--dry-run")
    assert code == 0, out
    assert "pip install doorlink[pi]" in out and "SupplementaryGroups=gpio)" in out
    assert "/etc/doorlink/site.json (0640" in out and "nothing was changed" in out
    assert _tree(root) == ["etc", "etc/group"]
    # On the system itself: the user and systemd steps too, yet nothing done.
    user = "dl-dry-run-test"
    dirs = [tmp_path / d for d in ("prefix", "config", "units")]
    code, out = _main(capsys, "--board", str(board), "--site", str(site), "--dry-run", "--user", user,
                      "--prefix", str(dirs[0]), "--config-dir", str(dirs[1]), "--unit-dir", str(dirs[2]))
    assert code == 0, out
    assert "useradd --system --user-group" in out and "systemctl daemon-reload" in out
    assert "systemctl enable --now doorlink-agent" in out
    assert not any(d.exists() for d in dirs)
    assert user not in Path("/etc/passwd").read_text()


@pytest.mark.parametrize(("board", "site", "said"), [
    ({"runtimes": ["micropython"], "heap_kb": 384}, {}, "has no cpython: this board is not a Pi"),
    ({"hal": "esp32", "chip": "esp32"}, {}, "does not run on a Pi"),
    ({"journal": {"path": "journal"}}, {}, "'/etc/doorlink/journal' (as installed in /etc/doorlink) is outside "
                                           "/var/lib/doorlink"),
    ({}, {"ca_file": "ca.pem"}, "ca_file 'ca.pem' would not be found by the service"),
    ({}, {"token": 5}, "site.json: token: must be"),
])
def test_a_board_or_site_the_service_cannot_run_is_refused_before_anything_is_done(tmp_path, capsys, board, site,
                                                                                   said):
    if "ca_file" in site:
        (tmp_path / "ca.pem").write_text("not used")
    root = tmp_path / "root"
    code, out = _main(capsys, "--board", str(_board(tmp_path, **board)), "--site", str(_site(tmp_path, **site)),
                      "--root", str(root))
    assert code == 2 and said in out and "->" in out, out    # the fix is given
    assert "Traceback" not in out and not root.exists()


@pytest.mark.parametrize("option", [["--prefix", "/opt/door link"], ["--prefix", "opt"], ["--config-dir", "/etc/%n"],
                                    ["--user", "Root;rm"]])
def test_paths_and_names_the_unit_cannot_carry_are_refused(tmp_path, capsys, option):
    code, out = _main(capsys, "--board", str(_board(tmp_path)), "--site", str(_site(tmp_path)), "--root",
                      str(tmp_path / "root"), *option)
    assert code == 2 and option[1] in out and "->" in out, out


def _elsewhere(tmp_path: Path) -> list[str]:
    """A real install's options, pointed into tmp_path: should a refusal
    ever be missed, nothing lands on this machine's system."""
    return ["--user", "dl-refused-test", "--prefix", str(tmp_path / "prefix"), "--config-dir",
            str(tmp_path / "config"), "--unit-dir", str(tmp_path / "units")]


def test_a_real_install_needs_root_and_says_sudo(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(install_service.os, "geteuid", lambda: 1000)
    code, out = _main(capsys, "--board", str(_board(tmp_path)), "--site", str(_site(tmp_path)),
                      *_elsewhere(tmp_path))
    assert code == 2 and "needs root" in out and "sudo" in out, out
    assert _tree(tmp_path) == ["board.json", "site.json"]


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd runs here: a real install would happen")
def test_without_systemd_running_a_real_install_says_where_to_run_it(tmp_path, capsys):
    code, out = _main(capsys, "--board", str(_board(tmp_path)), "--site", str(_site(tmp_path)),
                      *_elsewhere(tmp_path))
    assert code == 2 and "systemd is not running here" in out and "--root" in out, out
    assert _tree(tmp_path) == ["board.json", "site.json"]
