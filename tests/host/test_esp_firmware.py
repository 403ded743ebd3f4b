# Writing MicroPython firmware with esptool (host_tools/esp_firmware.py):
# the exact commands per chip, the checks that refuse a wrong file before
# the board is touched, esptool's real failures turned into a fix; and
# agent/package.json (mip's manifest) kept in step with agent/.
import io
import json
import os
import pty
import subprocess
import sys

import pytest

from host_tools import esp_firmware, mip_package, mpy
from host_tools.cli_common import CliError
from host_tools.paths import ROOT

# From MicroPython's download pages: "esptool.py --chip esp32 ... write_flash
# -z 0x1000 firmware.bin"; the S3/C3/C6/H2 images are written from 0.
ADDRESS = {"esp32": "0x1000", "esp32s2": "0x1000", "esp32s3": "0x0", "esp32c3": "0x0",
           "esp32c6": "0x0", "esp32h2": "0x0"}
CHIP_ID = {"esp32": 0, "esp32s2": 2, "esp32s3": 9, "esp32c3": 5, "esp32c6": 13, "esp32h2": 16}


def image(path, chip_id=0, address=0x1000, magic=0xE9, table=True):
    """A merged firmware image as MicroPython ships it, cut short: the
    bootloader's header (magic, 3 fields, entry point; then the extended
    header whose bytes 12-13 hold the chip id) and the partition table's
    first entry at flash 0x8000."""
    data = bytearray(0x8000 - address + 32)
    data[0:8] = bytes([magic, 3, 2, 0x20]) + (0x40080000).to_bytes(4, "little")
    data[12:14] = chip_id.to_bytes(2, "little")
    if table:
        data[0x8000 - address:0x8000 - address + 2] = b"\xaa\x50"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("chip", sorted(ADDRESS))
def test_dry_run_prints_erase_then_write_at_the_chips_address(chip, tmp_path):
    fw = image(tmp_path / "fw.bin", CHIP_ID[chip], int(ADDRESS[chip], 16))
    out = io.StringIO()
    esp_firmware.write_firmware(chip, "/dev/ttyUSB0", fw, 460800, dry_run=True, out=out)
    base = f"{sys.executable} -m esptool --chip {chip} --port /dev/ttyUSB0 --baud 460800"
    assert out.getvalue().splitlines() == [f"{base} erase-flash", f"{base} write-flash {ADDRESS[chip]} {fw}"]


def test_commands_are_argv_lists_and_the_dry_run_quotes_for_a_shell(tmp_path):
    folder = tmp_path / "my firmware"
    folder.mkdir()
    fw = image(folder / "ESP32 v1.29.bin")
    assert esp_firmware.firmware_commands("esp32", "/dev/ttyACM0", fw, 921600) == [
        [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyACM0", "--baud", "921600",
         "erase-flash"],
        [sys.executable, "-m", "esptool", "--chip", "esp32", "--port", "/dev/ttyACM0", "--baud", "921600",
         "write-flash", "0x1000", str(fw)]]
    out = io.StringIO()
    esp_firmware.write_firmware("esp32", "/dev/ttyACM0", fw, 921600, dry_run=True, out=out)
    assert out.getvalue().splitlines()[1].endswith(f"write-flash 0x1000 '{fw}'")


def test_the_table_agrees_with_esptool():
    from esptool.targets import CHIP_DEFS
    for chip, (address, chip_id) in esp_firmware.CHIPS.items():
        assert (CHIP_DEFS[chip].BOOTLOADER_FLASH_OFFSET, CHIP_DEFS[chip].IMAGE_CHIP_ID) == (address, chip_id)


def refused(path, chip="esp32", **kw):
    with pytest.raises(CliError) as e:
        esp_firmware.check_firmware(path, chip, **kw)
    return str(e.value)


def test_a_missing_or_empty_file_is_refused(tmp_path):
    assert "does not exist" in refused(tmp_path / "nope.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    msg = refused(tmp_path / "empty.bin")
    assert "is empty" in msg and "micropython.org/download" in msg


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    (tmp_path / "page.bin").write_bytes(b"<!DOCTYPE html><html>404</html>")
    assert "not an ESP firmware image" in refused(tmp_path / "page.bin")
    elf = image(tmp_path / "fw.elf", magic=0x7F)
    assert "does not start with byte 0xE9" in refused(elf)


def test_firmware_for_another_chip_is_refused_naming_both(tmp_path):
    s3 = image(tmp_path / "s3.bin", chip_id=9, address=0)
    msg = refused(s3, "esp32")
    assert "firmware for esp32s3, but the board is esp32" in msg
    assert "download the esp32 firmware" in msg
    esp32_image = image(tmp_path / "esp32.bin", chip_id=0)
    assert "firmware for esp32, but the board is esp32c3" in refused(esp32_image, "esp32c3")
    esp32_image_accepted = esp_firmware.check_firmware(esp32_image, "esp32")
    assert esp32_image_accepted is None


def test_an_app_only_image_is_refused(tmp_path):
    app = image(tmp_path / "micropython.bin", table=False)
    assert "application image (micropython.bin), not the whole firmware" in refused(app)


def test_a_file_too_large_for_the_flash_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.bin"
    with big.open("wb") as f:   # sparse: 17 MB on the disk's books, nothing written
        f.truncate(17 * 1024 * 1024)
    assert "does not fit a 16 MB flash" in refused(big)
    fw = image(tmp_path / "fw.bin")
    with fw.open("r+b") as f:
        f.truncate(4 * 1024 * 1024)
    assert "does not fit a 4 MB flash written from 0x1000" in refused(fw, flash_mb=4)


def test_an_unknown_chip_is_refused_with_the_ones_that_work(tmp_path):
    with pytest.raises(CliError) as e:
        esp_firmware.firmware_commands("esp8266", "/dev/ttyUSB0", tmp_path / "fw.bin")
    assert "esp32, esp32s2, esp32s3" in str(e.value)


def test_no_port_ends_in_the_fix_not_a_traceback(tmp_path):
    # Real esptool, a port that is not there.
    out = io.StringIO()
    with pytest.raises(CliError) as e:
        esp_firmware.write_firmware("esp32", str(tmp_path / "ttyUSB9"), image(tmp_path / "fw.bin"), 460800,
                                    dry_run=False, out=out)
    assert f"there is no serial port {tmp_path / 'ttyUSB9'}" in str(e.value)
    assert "charge-only" in str(e.value) and e.value.code == 1
    assert "esptool v5" in out.getvalue()   # its own output was streamed to the user


def test_esptool_accepts_the_write_command_as_it_is_printed(tmp_path):
    # The write is never reached without a board: run it alone against a
    # missing port; esptool gets as far as opening the port only if every
    # argument parsed (click stops at a bad one with a usage error).
    port = str(tmp_path / "ttyUSB9")
    write = esp_firmware.firmware_commands("esp32s3", port, image(tmp_path / "fw.bin", 9, 0))[1]
    res = subprocess.run(write, capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and f"Could not open {port}" in res.stdout + res.stderr, res.stdout + res.stderr


def test_a_port_where_no_bootloader_answers(tmp_path):
    # Real esptool on a pty that never answers: a board not in download
    # mode, or one behind a charge-only cable (esptool gives up in ~5 s).
    controller, device = pty.openpty()
    port = os.ttyname(device)
    try:
        out = io.StringIO()
        with pytest.raises(CliError) as e:
            esp_firmware.write_firmware("esp32", port, image(tmp_path / "fw.bin"), 115200, dry_run=False, out=out)
    finally:
        os.close(controller)
        os.close(device)
    assert str(e.value).startswith(f"no ESP32 bootloader answered on {port}")
    assert "hold BOOT and press EN" in str(e.value)
    assert "erase-flash" in out.getvalue() and "write-flash" not in out.getvalue()


def test_no_permission_on_the_port_names_the_dialout_group():
    # esptool's own text (this test runs as root here, which no port refuses)
    output = ("ERROR: A fatal error occurred: Could not open /dev/ttyUSB0, the port is busy or doesn't exist.\n"
              "([Errno 13] could not open port /dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0')\n\n"
              "Hint: Try to add user into dialout or uucp group.\n")
    err = esp_firmware._failure("/dev/ttyUSB0", "esp32", output, 2)
    assert str(err) == ("no permission to open /dev/ttyUSB0\n"
                        "  -> sudo usermod -aG dialout $USER, then log out and in again")


def test_a_wrong_chip_reported_by_esptool_names_the_chip_found():
    output = "Connecting....\nERROR: A fatal error occurred: This chip is ESP32-S3, not ESP32. Wrong chip argument?\n"
    err = esp_firmware._failure("/dev/ttyUSB0", "esp32", output, 2)
    assert str(err).startswith("the board on /dev/ttyUSB0 is ESP32-S3, not esp32")


def test_package_json_lists_every_agent_source_and_the_version():
    on_disk = mip_package.PACKAGE_JSON.read_text()
    assert on_disk == mip_package.render(), (
        "agent/package.json is out of date with agent/ (a .py file added, removed, or the version "
        "changed): run `python -m host_tools.mip_package` and commit the result")
    pkg = json.loads(on_disk)
    listed = {target for target, _ in pkg["urls"]}
    assert "agent/main.py" in listed and "agent/hal/esp32.py" in listed
    assert all((mip_package.AGENT / url).is_file() for _, url in pkg["urls"])


def test_the_agent_runs_from_a_romfs_image_built_by_mpremote_in_less_heap(tmp_path, figure):
    # The README's ROMFS recipe, on the unix port's vfs.VfsRom: mpremote
    # builds the image from the deployable .mpy tree, the agent's modules
    # import from it, and their bytecode stays in the image (on a board: in
    # flash) instead of the heap. Figures printed, not timed.
    image = tmp_path / "agent.romfs"
    subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", str(image), "build",
                    str(mpy.build_deploy())], check=True, capture_output=True, timeout=60)
    script = ROOT / "host_tools" / "mp" / "romfs_heap.py"

    def heap(mode, where):
        res = subprocess.run([mpy.tool("micropython"), "-X", "heapsize=4m", str(script), mode, str(where),
                              "agent.main", "agent.config", "agent.boot_state", "agent.device"],
                             env=mpy.micropython_env(), capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
        return json.loads(res.stdout.splitlines()[-1])

    on_fs, on_rom = heap("fs", mpy.build_deploy()), heap("rom", image)
    figure(f"agent start-up modules ({on_fs['modules']}), unix port: {on_fs['heap_bytes'] / 1024:.1f} KB of heap "
           f"from .mpy files, {on_rom['heap_bytes'] / 1024:.1f} KB from a ROMFS image "
           f"({on_rom['image_bytes'] / 1024:.0f} KB)")
    assert on_rom["modules"] == on_fs["modules"] >= 10 and not on_rom["failed"]
    assert on_rom["from"] == "/rom/agent/__init__.mpy"
    assert on_rom["heap_bytes"] < 0.8 * on_fs["heap_bytes"]
