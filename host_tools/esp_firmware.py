"""Writing MicroPython firmware to an ESP32 with esptool (`doorlink flash
--firmware FILE`): the file is checked before anything touches the board,
then esptool (v5 syntax, run from this venv) erases the flash and writes
the image at the chip's bootloader address.

The checks catch what technicians get wrong: a download that is not a
firmware image (an .elf, an HTML error page, a .uf2), the app-only
`micropython.bin` instead of the whole `firmware.bin`, and an image built
for another chip, which esptool would write without a word and the board
would never boot.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path
from typing import TextIO

from host_tools.cli_common import CliError

MB = 1024 * 1024
# Where a chip's ROM looks for the bootloader, and the chip id an image
# built for it carries (esptool's targets/*.py: BOOTLOADER_FLASH_OFFSET,
# IMAGE_CHIP_ID; tests/host/test_esp_firmware.py checks they still agree).
# MicroPython's downloads are merged images that start at this address.
CHIPS = {
    "esp32": (0x1000, 0),
    "esp32s2": (0x1000, 2),
    "esp32s3": (0x0, 9),
    "esp32c3": (0x0, 5),
    "esp32c6": (0x0, 13),
    "esp32h2": (0x0, 16),
}
IMAGE_MAGIC = 0xE9
HEADER_BYTES = 24            # 8-byte image header + 16-byte extended header
CHIP_ID_AT = 12              # little-endian u16 in the extended header
PARTITION_TABLE_AT = 0x8000  # flash address of the partition table in every merged image
PARTITION_MAGIC = b"\xaa\x50"
MAX_FLASH_MB = 16            # the largest flash on the modules doorlink's boards use
# Bounds on one esptool run: an erase of 16 MB takes under a minute, a
# write at 115200 baud a few minutes; past this something hangs.
ESPTOOL_TIMEOUT_S = 900
TAIL_LINES = 40


def _chip(chip: str) -> tuple[int, int]:
    try:
        return CHIPS[chip]
    except KeyError:
        raise CliError(f"doorlink cannot write firmware to a chip '{chip}'",
                       "use a board file whose chip is one of " + ", ".join(CHIPS)) from None


def _chip_name(chip_id: int) -> str:
    for name, (_, cid) in CHIPS.items():
        if cid == chip_id:
            return name
    return f"chip id {chip_id}"


def firmware_commands(chip: str, port: str, firmware: Path, baud: int = 460800) -> list[list[str]]:
    """The esptool runs that put `firmware` on the board: an erase (a
    file system left by other firmware would not mount), then the write."""
    address, _ = _chip(chip)
    base = [sys.executable, "-m", "esptool", "--chip", chip, "--port", port, "--baud", str(baud)]
    return [base + ["erase-flash"], base + ["write-flash", hex(address), str(firmware)]]


def check_firmware(path: Path, chip: str, flash_mb: int = MAX_FLASH_MB) -> None:
    """Refuse a file that is not a MicroPython firmware image for `chip`.
    Reads the header only: the file's size is checked first."""
    address, want_id = _chip(chip)
    download = "download the .bin for your board from https://micropython.org/download/ (its 'Firmware' file)"
    path = Path(path)
    if not path.is_file():
        raise CliError(f"firmware file {path} does not exist", download)
    size = path.stat().st_size
    if size == 0:
        raise CliError(f"firmware file {path} is empty", "the download was interrupted: " + download)
    room = flash_mb * MB - address
    if size > room:
        raise CliError(f"firmware file {path} is {size / MB:.1f} MB: it does not fit a {flash_mb} MB flash "
                       f"written from {address:#x}", "this is not a firmware image: " + download)
    with path.open("rb") as f:
        header = f.read(HEADER_BYTES)
        f.seek(PARTITION_TABLE_AT - address)
        table = f.read(len(PARTITION_MAGIC))
    if len(header) < HEADER_BYTES or header[0] != IMAGE_MAGIC:
        raise CliError(f"{path} is not an ESP firmware image (it does not start with byte 0xE9)",
                       "an .elf, .uf2 or a saved web page will not boot: " + download)
    got_id = int.from_bytes(header[CHIP_ID_AT:CHIP_ID_AT + 2], "little")
    if got_id != want_id:
        raise CliError(f"{path} is firmware for {_chip_name(got_id)}, but the board is {chip}",
                       f"download the {chip} firmware, or use the board file that matches your board")
    if table != PARTITION_MAGIC:
        raise CliError(f"{path} has no partition table at {PARTITION_TABLE_AT:#x}: it is an application "
                       "image (micropython.bin), not the whole firmware", download)


def _failure(port: str, chip: str, output: str, code: int) -> CliError:
    """esptool's failure as one line and the fix (exit code 1: the job
    was asked rightly and the board did not cooperate)."""
    if "No module named esptool" in output:
        return CliError("esptool is not installed in this venv", "pip install 'doorlink[host]'", code=1)
    if "could not open port" in output.lower() or "Could not open" in output:
        if "Permission denied" in output:
            return CliError(f"no permission to open {port}",
                            "sudo usermod -aG dialout $USER, then log out and in again", code=1)
        if "No such file" in output or re.search(r"Errno 2\b", output):
            return CliError(f"there is no serial port {port}",
                            "plug the board in with a data cable (a charge-only cable shows no port); "
                            "`mpremote devs` lists the ports", code=1)
        return CliError(f"{port} is busy", "another program has it open: mpremote, screen, `doorlink logs`? "
                        "close it", code=1)
    if "This chip is" in output and "Wrong chip argument" in output:
        line = next(s for s in output.splitlines() if "This chip is" in s)
        found = line.split("This chip is", 1)[1].split(",", 1)[0].strip()
        return CliError(f"the board on {port} is {found}, not {chip}",
                        "use the board file and firmware for the chip you have", code=1)
    if "Failed to connect" in output or "No serial data received" in output or "Wrong boot mode" in output:
        return CliError(f"no ESP32 bootloader answered on {port}",
                        "hold BOOT and press EN (reset) to enter the bootloader, then retry; "
                        "or the cable is charge-only", code=1)
    last = next((s for s in reversed(output.splitlines()) if s.strip()), "no output")
    return CliError(f"esptool failed (exit {code}): {last.strip()}", "run it by hand with "
                    "`python -m esptool ... --trace` (the command is printed by --dry-run)", code=1)


def _run(cmd: list[str], out: TextIO, timeout_s: float = ESPTOOL_TIMEOUT_S) -> tuple[int, str]:
    """Run one esptool command, copying its output as it comes (its
    progress lines end in CR; text mode turns them into lines). Returns
    the exit code and the last lines for the error message."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", stdin=subprocess.DEVNULL)
    watchdog = threading.Timer(timeout_s, proc.kill)
    watchdog.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line)
            out.write(line)
            out.flush()
        code = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if code < 0:
        tail.append(f"esptool ran over {timeout_s:.0f} s and was stopped\n")
    return code, "".join(tail)


def write_firmware(chip: str, port: str, firmware: Path, baud: int, dry_run: bool, out: TextIO) -> None:
    """Check `firmware`, then erase and write it; with dry_run print the
    commands (shell-quoted, one per line) and run nothing."""
    check_firmware(Path(firmware), chip)
    commands = firmware_commands(chip, port, Path(firmware), baud)
    if dry_run:
        for cmd in commands:
            out.write(shlex.join(cmd) + "\n")
        return
    for cmd in commands:
        out.write("$ " + shlex.join(cmd) + "\n")
        code, output = _run(cmd, out)
        if code != 0:
            raise _failure(port, chip, output, code)
