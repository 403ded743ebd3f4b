"""`doorlink install-service`: the agent as a systemd service on a Raspberry Pi.

    sudo doorlink install-service --board B.json --site S.json [--prefix /opt/doorlink]
        [--config-dir /etc/doorlink] [--unit-dir /etc/systemd/system] [--user doorlink]
        [--root DIR] [--dry-run] [--no-start]

It installs THIS checkout, non-editable, with only the `pi` extra into a venv
of its own (the service must not depend on the checkout staying where it is,
nor carry the host tools), the board and site files into the config folder
(the site holds the device's token: mode 0640, group of the service user),
the unit from packaging/doorlink-agent.service with its paths and user filled
in, the system user, and then asks systemd to start it.

`--root DIR` stages everything under DIR (like DESTDIR: no user is made,
systemd is not asked); `--dry-run` prints every step and changes nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from agent import __version__
from agent.config import JOURNAL_FIELDS, beside, read_json
from agent.errors import ConfigError
from host_tools.cli_common import CliError, Parents
from host_tools.paths import ROOT, board_path
from host_tools.validate import check

SERVICE = "doorlink-agent"
UNIT_NAME = SERVICE + ".service"
TEMPLATE = ROOT / "packaging" / UNIT_NAME
# The unit's StateDirectory=: under ProtectSystem=strict the only place the
# service may write, so the journal and the user store must live there.
STATE_DIR = PurePosixPath("/var/lib/doorlink")
# ProtectHome=yes hides these from the service.
HIDDEN = (PurePosixPath("/home"), PurePosixPath("/root"), PurePosixPath("/run/user"))
PI_HALS = ("gpiozero", "emulated")
GROUPS = ("gpio", "dialout")           # the pins and the serial ports, where the system has them
CHECKOUT_FILES = ("pyproject.toml", "README.md", "agent", "host_tools")
# ExecStart= takes a command line in which spaces split, quotes quote, "%"
# starts a specifier and "$" a variable: a path of plain characters only.
PLAIN_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")    # fullmatch: "$" would let a final newline in
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
PIP_TIMEOUT_S = 1800
TAIL = 15   # lines of a failed pip's output shown
MAX_FILE = 256 * 1024   # a board or site file is a few KB


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("install-service", help="install the agent as a systemd service on a Raspberry Pi")
    p.add_argument("--board", required=True, help="board file, or a name in boards/ (rpi4-door, ...)")
    p.add_argument("--site", required=True, help="site file (server, device id, token)")
    p.add_argument("--prefix", default="/opt/doorlink", help="the venv goes to PREFIX/venv (default %(default)s)")
    p.add_argument("--config-dir", default="/etc/doorlink", help="board.json and site.json (default %(default)s)")
    p.add_argument("--unit-dir", default="/etc/systemd/system", help="where the unit goes (default %(default)s)")
    p.add_argument("--user", default="doorlink", help="the service's system user (default %(default)s)")
    p.add_argument("--root", help="stage everything under this folder (no user made, systemd not asked)")
    p.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
    p.add_argument("--no-start", action="store_true", help="enable the service but do not start it now")
    p.set_defaults(handler=run)
    return p


@dataclass(frozen=True)
class Step:
    text: str                    # what it does, as printed
    do: Callable[[], None]


@dataclass(frozen=True)
class Target:
    """Where things go on the Pi (`prefix`...) and, staged, on this disk (`disk()`)."""

    prefix: PurePosixPath
    config_dir: PurePosixPath
    unit_dir: PurePosixPath
    user: str
    root: Path | None

    def disk(self, path: PurePosixPath) -> Path:
        return self.root / path.relative_to("/") if self.root else Path(path)

    @property
    def python(self) -> PurePosixPath:
        return self.prefix / "venv" / "bin" / "python"

    @property
    def board(self) -> PurePosixPath:
        return self.config_dir / "board.json"

    @property
    def site(self) -> PurePosixPath:
        return self.config_dir / "site.json"

    @property
    def unit(self) -> PurePosixPath:
        return self.unit_dir / UNIT_NAME


def _plain_path(option: str, text: str) -> PurePosixPath:
    if not PLAIN_PATH.fullmatch(text) or "/../" in text + "/" or "//" in text:
        raise CliError(f"{option} {text!r}: must be an absolute path of letters, digits and ._+-/ only",
                       "the unit's ExecStart= splits on spaces and expands % and $: pick a plain path")
    return PurePosixPath(text)


def _target(args: argparse.Namespace) -> Target:
    if not USER_NAME.fullmatch(args.user):
        raise CliError(f"--user {args.user!r}: not a system user name",
                       "lower-case letters, digits, _ and -, starting with a letter or _, at most 32")
    root = Path(args.root).resolve() if args.root else None
    if root == Path("/"):
        root = None
    return Target(_plain_path("--prefix", args.prefix), _plain_path("--config-dir", args.config_dir),
                  _plain_path("--unit-dir", args.unit_dir), args.user, root)


def _read_once(board_file: str, site_file: str) -> dict[str, bytes]:
    """Both files, read once: what is checked is what is installed. Read
    again at the copy, minutes later (after pip), a path could by then lead
    elsewhere (a symlink to /etc/shadow, swapped in by whoever can write
    its folder) and root would install that, board.json world-readable."""
    held = {}
    for name in (board_file, site_file):
        try:
            # O_NONBLOCK: a FIFO given by mistake must not hang the install.
            with os.fdopen(os.open(name, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise CliError(f"{name}: not a file", "give the path of a board file (boards/) and a site file")
                held[name] = f.read(MAX_FILE + 1)
        except OSError as e:
            what = "no such file" if isinstance(e, FileNotFoundError) else f"cannot be read ({e.strerror})"
            raise CliError(f"{name}: {what}", "give the path of a board file (boards/) and a site file") from None
        if len(held[name]) > MAX_FILE:
            raise CliError(f"{name}: larger than {MAX_FILE // 1024} KB: not a board or site file")
    return held


def _check_held(board_file: str, site_file: str, held: dict[str, bytes], target: Target) -> None:
    """_check_files on private copies of the bytes read, its messages
    naming the files as given."""
    with tempfile.TemporaryDirectory(prefix="doorlink-check-") as tmp:
        copies = {}
        for i, name in enumerate((board_file, site_file)):
            copy = Path(tmp) / str(i) / Path(name).name
            copy.parent.mkdir()
            copy.write_bytes(held[name])
            copies[str(copy)] = name
        try:
            _check_files(*copies, target)
        except CliError as e:
            said = [e.problem, e.fix]
            for copy, name in copies.items():
                said = [text.replace(copy, name) for text in said]
            raise CliError(said[0], said[1], code=e.code) from None


def _check_files(board_file: str, site_file: str, target: Target) -> None:
    """The agent's checks, the chip's pin rules, then what a Pi service needs:
    CPython, a Pi's hal, and every path it reads or writes reachable once
    the files sit in the config folder under the unit's sandbox."""
    # What makes a board a Pi's first: its own words beat the agent's
    # generic refusal of, say, an esp32 hal on CPython.
    try:
        raw = read_json(board_file)
    except ConfigError:
        raw = {}      # not JSON: check() below says so, with the file and the field
    runtimes, hal = raw.get("runtimes"), raw.get("hal")
    if isinstance(runtimes, list) and "cpython" not in runtimes:
        raise CliError(f"{board_file}: runtimes {runtimes} has no cpython: this board is not a Pi",
                       "a MicroPython board is flashed over its serial port: doorlink flash --port PORT ...")
    if isinstance(hal, str) and hal not in PI_HALS:
        raise CliError(f"{board_file}: hal {hal!r} does not run on a Pi",
                       f"a Pi's board file has hal {' or '.join(repr(h) for h in PI_HALS)} (boards/rpi4-door.json)")
    # Before check(): it looks for a relative ca_file beside the file it
    # reads, which is the private copy _check_held made.
    try:
        ca = read_json(site_file).get("ca_file")
    except ConfigError:
        ca = None     # not JSON: check() below says so
    if isinstance(ca, str) and ca and (not ca.startswith("/") or any(_under(ca, h) for h in HIDDEN)):
        raise CliError(f"{site_file}: ca_file {ca!r} would not be found by the service "
                       "(relative: looked for in the config folder; /home, /root: hidden by ProtectHome=yes)",
                       f"put the CA file in {target.config_dir} and name it by its absolute path")
    refused, _ = check(board_file, site_file)
    if refused:
        raise CliError("refused:\n  " + "\n  ".join(refused),
                       f"fix the fields named above (doorlink validate {board_file})")
    # Relative paths in a file are taken from its folder: from the config folder, once installed.
    journal = beside(str(target.board), raw.get("journal", {}).get("path") or JOURNAL_FIELDS["path"][2])
    writable = [("journal.path", journal)]
    if raw.get("access", {}).get("path"):
        writable.append(("access.path", beside(str(target.board), raw["access"]["path"])))
    for field, path in writable:
        if not _under(path, STATE_DIR):
            raise CliError(f"{board_file}: {field} {path!r} (as installed in {target.config_dir}) is outside "
                           f"{STATE_DIR}, the only folder the service may write (ProtectSystem=strict)",
                           f"set {field} to \"{STATE_DIR / 'journal'}\" (boards/rpi4-door.json does)")


def _hidden_python() -> str | None:
    """The interpreter a venv made now would run, if the unit's sandbox hides it."""
    base = os.path.realpath(sys._base_executable)
    return base if any(_under(base, h) for h in HIDDEN) else None


def _under(path: str, folder: PurePosixPath) -> bool:
    return PurePosixPath(os.path.normpath(path)).is_relative_to(folder)


def _groups(target: Target) -> list[str]:
    """Of gpio and dialout, the groups the (staged) system has: systemd
    refuses to start a unit whose SupplementaryGroups= names a missing one."""
    group_file = target.disk(PurePosixPath("/etc/group"))
    if target.root and group_file.is_file():
        names = {line.split(":", 1)[0] for line in group_file.read_text().splitlines()}
        return [g for g in GROUPS if g in names]
    found = []
    for g in GROUPS:
        with contextlib.suppress(KeyError):
            found.append(grp.getgrnam(g).gr_name)
    return found


def _primary_group(user: str) -> str:
    """The user's group (useradd --user-group names it after the user)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def render_unit(template: str, target: Target, groups: list[str]) -> str:
    """The shipped unit with this install's paths and user: only the
    [Service] lines that name them change."""
    values = {
        "ExecStart": f"{target.python} -m agent.main --board {target.board} --site {target.site}",
        "User": target.user,
        "Group": target.user if target.root else _primary_group(target.user),
        "SupplementaryGroups": " ".join(groups),
    }
    out, seen, section = [f"# Written by `doorlink install-service` (doorlink {__version__}) "
                          f"from packaging/{UNIT_NAME}."], set(), ""
    for line in template.splitlines():
        if line.startswith("["):
            section = line.strip()
        key = line.split("=", 1)[0]
        if section == "[Service]" and "=" in line and key in values:
            seen.add(key)
            if not values[key]:
                continue      # no such groups here: the line goes
            line = f"{key}={values[key]}"
        out.append(line)
    missing = set(values) - seen
    if missing:
        raise RuntimeError(f"{TEMPLATE} lost its {', '.join(sorted(missing))} line(s) in [Service]")
    return "\n".join(out) + "\n"


def _write(path: Path, data: bytes, mode: int, group: str | None = None) -> None:
    """Whole or not at all, and never readable beyond `mode`, even for a moment.
    The temporary file is made new (O_EXCL, O_NOFOLLOW): one planted in its
    place, a symlink to /etc/shadow or a file someone holds open, must not
    have root write the token through it."""
    tmp = path.with_name(path.name + ".new")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()   # a previous run's, killed half-way (unlink removes a symlink, not its target)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, mode)
            if group is not None:
                os.fchown(fd, 0, grp.getgrnam(group).gr_gid)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        raise CliError(f"cannot write {path}: {e.strerror}",
                       f"check who owns {path.parent} and what is in it (a {tmp.name} that reappears is someone "
                       "else's doing), then run again", code=1) from None


def _run(argv: list[str], what: str, timeout: float = 120, cwd: str | None = None,
         fix: str = "fix what it says and run again") -> str:
    """Run a step's command; its output, or a CliError with the end of it."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, umask=0o022,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CliError(f"{what} failed: {e}", code=1) from None
    if res.returncode:
        tail = "\n    ".join((res.stdout + res.stderr).strip().splitlines()[-TAIL:])
        raise CliError(f"{what} failed (exit {res.returncode}):\n    {tail}", fix, code=1)
    return res.stdout


@contextlib.contextmanager
def _checkout_copy() -> Iterator[Path]:
    """What pip builds the wheel from: a copy, so the build neither writes
    into the checkout (setuptools' build/, *.egg-info) nor races others."""
    missing = [n for n in CHECKOUT_FILES if not (ROOT / n).exists()]
    if missing or not TEMPLATE.is_file():
        raise CliError(f"{ROOT} is not a doorlink checkout (no {', '.join(missing) or TEMPLATE.name})",
                       "run it from a checkout: cd CHECKOUT && sudo /usr/bin/python3 -m host_tools.cli "
                       "install-service ...")
    with tempfile.TemporaryDirectory(prefix="doorlink-install-") as tmp:
        for name in CHECKOUT_FILES:
            src, dst = ROOT / name, Path(tmp) / name
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, dst)
        yield Path(tmp)


# Run by the venv's python, isolated (-I: no cwd, no PYTHONPATH, no user site).
PROBE = ("import json, importlib.util, agent.main, agent; "
         "print(json.dumps({'agent': agent.__file__, 'aiohttp': importlib.util.find_spec('aiohttp') is not None}))")


def _install_venv(target: Target) -> None:
    python = str(target.disk(target.python))
    _run([sys.executable, "-m", "venv", str(target.disk(target.prefix / "venv"))], "creating the venv")
    with _checkout_copy() as src:
        _run([python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check", f"{src}[pi]"],
             "pip install doorlink[pi]", timeout=PIP_TIMEOUT_S)
    found = json.loads(_run([python, "-I", "-c", PROBE], "importing agent.main in the venv", cwd="/"))
    if found["aiohttp"]:
        raise CliError(f"{target.prefix / 'venv'} holds aiohttp: it has the host tools, not a Pi's agent only",
                       f"remove it (rm -r {target.disk(target.prefix / 'venv')}) and install again", code=1)


def _steps(args: argparse.Namespace, target: Target, held: dict[str, bytes]) -> list[Step]:
    real = target.root is None
    as_root = os.geteuid() == 0
    user_exists = _user_exists(target.user)
    groups = _groups(target)
    site_group = (_primary_group(target.user) if user_exists else target.user) if real and as_root else None
    steps = []
    if real and not user_exists:
        argv = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(STATE_DIR),
                "--shell", "/usr/sbin/nologin"] + (["--groups", ",".join(groups)] if groups else []) + [target.user]
        steps.append(Step(" ".join(argv), lambda: _run(argv, "useradd")))
    steps += [
        Step(f"python -m venv {target.prefix / 'venv'}, then pip install doorlink[pi] from {ROOT} (not editable) "
             "and check that agent.main imports and aiohttp is absent", lambda: _install_venv(target)),
        Step(f"install {args.board} as {target.board} (0644)",
             lambda: _write(target.disk(target.board), held[args.board], 0o644)),
        Step(f"install {args.site} as {target.site} (0640{', group ' + site_group if site_group else ''}: "
             "it holds the device's token)",
             lambda: _write(target.disk(target.site), held[args.site], 0o640, site_group)),
        Step(f"write {target.unit} (ExecStart={target.python} -m agent.main, User={target.user}, "
             f"SupplementaryGroups={' '.join(groups) or '(none: no gpio/dialout group here)'})",
             lambda: _write(target.disk(target.unit), render_unit(TEMPLATE.read_text(), target, groups).encode(),
                            0o644)),
    ]
    if real:
        enable = ["systemctl", "enable", SERVICE] if args.no_start else ["systemctl", "enable", "--now", SERVICE]
        steps += [Step("systemctl daemon-reload", lambda: _run(["systemctl", "daemon-reload"], "systemctl")),
                  Step(" ".join(enable), lambda: _run(enable, "systemctl", timeout=180,
                                                      fix=f"why it did not start: journalctl -u {SERVICE} -e"))]
    return steps


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    target = _target(args)
    args.board = str(board_path(args.board))
    held = _read_once(args.board, args.site)
    _check_held(args.board, args.site, held, target)
    if not args.dry_run and target.root is None:
        if os.geteuid() != 0:
            raise CliError("installing a system service needs root",
                           "run it with sudo, or stage the files with --root DIR (or see them with --dry-run)")
        if not Path("/run/systemd/system").is_dir():
            raise CliError("systemd is not running here: nothing would start the service",
                           "run it on the Pi itself, or stage the files with --root DIR")
    hidden = _hidden_python()
    if hidden and target.root is None:
        problem = (f"the venv would run {hidden}, which ProtectHome=yes hides from the service "
                   "(a Python installed in a home folder, e.g. by pyenv)")
        fix = f"use the system's Python: cd {ROOT} && sudo /usr/bin/python3 -m host_tools.cli install-service ..."
        if not args.dry_run:
            raise CliError(problem, fix)
        print(f"warning: {problem}\n  -> {fix}")
    steps = _steps(args, target, held)
    if target.root:
        print(f"staging under {target.root} (the paths below are the Pi's)")
    for i, step in enumerate(steps, 1):
        print(f"[{i}/{len(steps)}] {'would ' if args.dry_run else ''}{step.text}", flush=True)
        if not args.dry_run:
            step.do()
    if args.dry_run:
        print("dry run: nothing was changed")
    elif target.root:
        print(f"staged under {target.root}: copy it to the Pi's /, then: systemctl daemon-reload && "
              f"systemctl enable --now {SERVICE}")
    else:
        print(f"{SERVICE} {'enabled (start it: systemctl start ' + SERVICE + ')' if args.no_start else 'running'}; "
              f"follow its log: journalctl -u {SERVICE} -f")
    return 0
