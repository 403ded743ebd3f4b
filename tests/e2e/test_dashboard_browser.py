# The bench dashboard in a real browser: Debian's headless Chromium driven
# by Playwright (Playwright's own browser download is not used; the Makefile
# installs the `chromium` package). A bench that wants admin tokens, an
# attendance terminal with a door, a climate sensor and a display (the
# agent on MicroPython): log in through the page, the terminal comes online
# live, a finger press shows up as a punch, the temperature chart draws,
# the Unlock button energises the relay on the emulated board, the screen
# snapshot (cloud control) shows as an image. Then the screenshot for the
# README (docs/images/dashboard.png), and a device with a hostile id and
# payload whose markup stays text.
import asyncio
import json
import os
import shutil

import aiohttp
import pytest

from agent.codecs import zfm
from host_tools.bench import start_bench
from host_tools.bench.app import CONTROL
from host_tools.paths import ROOT, board_path
from host_tools.rig import Rig

from e2e_support import eventually

pa = pytest.importorskip("playwright.async_api", reason="Playwright is not installed: pip install -e '.[test]'")

DEVICE = "lobby-terminal"
TOKEN = "tok_dashboard_e2e"
ADMIN_TOKEN = "adm_dashboard_0123456789"
RELAY = 26
FINGER = 7
HOSTILE = '<img src=x id=pwned onerror="window.pwned=1">'
HOSTILE_TOKEN = "tok_hostile_device"
# The README's picture: written by this test when DOORLINK_SCREENSHOTS=1
# (`DOORLINK_SCREENSHOTS=1 make test`), so a plain run leaves the tree clean.
SCREENSHOT = ROOT / "docs" / "images" / "dashboard.png"
WAIT_MS = 20000


def _board(tmp_path):
    """The attendance terminal (fingerprint reader, door) with a climate
    sensor and a display."""
    spec = json.loads(board_path("emulated-attendance").read_text())
    for p in spec["peripherals"]:
        if p["type"] == "fingerprint":
            p["poll_ms"] = 50
    spec["peripherals"] += [{"type": "climate", "name": "lobby"}, {"type": "display", "name": "screen"}]
    path = tmp_path / "terminal-with-display.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def chromium():
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (make venv does it as root)")
    return path


@pytest.fixture
async def system(tmp_path):
    """A bench that wants admin tokens, with an admin; the terminal's rig on it."""
    bench = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"), require_auth=True)
    bench.store.add_admin("ops", ADMIN_TOKEN)
    rig = Rig(tmp_path, board=_board(tmp_path), runtime="micropython", device_id=DEVICE, token=TOKEN, bench=bench,
              site={"telemetry_interval_s": 1, "heartbeat_s": 5})
    try:
        yield bench, rig
    finally:
        try:
            await asyncio.wait_for(rig.stop(), 20)
        finally:
            await bench.stop()
            if rig.lines:
                print("---- agent output ----\n" + rig.output(40))


async def _press(reader, finger):
    """A finger on the sensor until the agent has searched it, then off."""
    searches = reader.answered(zfm.SEARCH)
    reader.place(finger)
    await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, searches + 1, 10.0)
    reader.lift()


async def _hostile_device(bench):
    """A device whose id and event payload are markup, over the JSON protocol."""
    bench.store.add_device(HOSTILE, HOSTILE_TOKEN)
    async with aiohttp.ClientSession() as http, http.ws_connect(bench.url) as ws:
        await ws.send_json({"type": "register", "device_id": HOSTILE, "token": HOSTILE_TOKEN})
        assert (await ws.receive_json(timeout=5))["type"] == "registered"
        await ws.send_json({"type": "event", "event_type": "<script>window.pwned=2</script>",
                            "payload": {"door": HOSTILE, "note": "<b id=bold>x</b>"}})
        await ws.send_json({"type": "event", "event_type": "door_forced", "payload": {"door": HOSTILE}})
        await asyncio.sleep(0.5)


async def test_log_in_watch_a_terminal_unlock_its_door_and_see_its_screen(chromium, system, tmp_path):
    bench, rig = system
    expect = pa.expect
    async with pa.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            problems = []   # script errors, CSP refusals: the page must have none
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            dialogs = []
            page.on("dialog", lambda d: dialogs.append(d.message))

            await page.goto(bench.http_url + "/")
            await expect(page.locator("#login")).to_be_visible()
            await page.fill("#token", "adm_not-the-right-one-000")
            await page.click("#login-form button[type=submit]")
            await expect(page.locator("#login-error")).to_have_text("the bench refused that token")
            problems.clear()   # the refused login's 401, as the console reports it
            await page.fill("#token", ADMIN_TOKEN)
            await page.click("#login-form button[type=submit]")
            await expect(page.locator("#who")).to_have_text("admin: ops")
            await expect(page.locator("#link")).to_have_text("live")
            assert ADMIN_TOKEN not in page.url

            # The terminal starts after the page is open: it appears, online, with no reload.
            site = rig.write_site(control={"url": bench.control_url})
            session = await rig.start_agent(site=site)
            entry = page.locator(f'#devices li[data-device="{DEVICE}"]')
            await expect(entry.locator(".state")).to_have_text("online", timeout=WAIT_MS)
            await entry.click()
            await expect(page.locator("#device-title")).to_have_text(f"{DEVICE} — online")
            front = page.locator('#doors tr[data-door="front"]')
            await expect(front.locator(".lock")).to_have_text("locked", timeout=WAIT_MS)
            # Found closed at start (no event for that): the page asks again until it knows.
            await expect(front.locator(".position")).to_have_text("closed", timeout=WAIT_MS)

            session.reader.enroll(FINGER)
            await _press(session.reader, FINGER)
            await expect(page.locator("#punches tr").first.locator("td").nth(1)).to_have_text(str(FINGER),
                                                                                           timeout=WAIT_MS)

            for t in (21.0, 22.5, 21.8, 23.1):
                session.emulator.set_climate(t, 40.0)
                await asyncio.sleep(1.1)
            await page.wait_for_function("Number(document.getElementById('chart').dataset.samples) >= 3",
                                         timeout=WAIT_MS)
            await expect(page.locator("#chart polyline")).to_have_count(1)

            assert session.emulator.relay_energised() is False
            await front.locator("button.unlock").click()
            await session.emulator.wait_output(RELAY, 1, timeout=10)
            await expect(front.locator(".lock")).to_have_text("unlocked", timeout=WAIT_MS)
            await expect(page.locator("#command-reply")).to_have_text("unlock front: done", timeout=WAIT_MS)
            await expect(page.locator("#decisions tr").first).to_contain_text("granted")

            await eventually(lambda: DEVICE in bench.app[CONTROL].online(), timeout=20)
            await page.click("#snapshot")
            screen = page.locator("#screen")
            await expect(screen).to_be_visible(timeout=WAIT_MS)
            width = await screen.evaluate("img => img.complete ? img.naturalWidth : 0")
            assert width == 256, width   # 128 display pixels at scale 200
            await expect(page.locator("#control-status")).to_have_text("screen/snapshot: answered")

            shot = SCREENSHOT if os.environ.get("DOORLINK_SCREENSHOTS") == "1" else tmp_path / "shot" / "dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10000

            # Hostile input stays text: no element, no script, no dialog.
            await _hostile_device(bench)
            hostile = page.locator("#devices li").filter(has_text=HOSTILE)
            await expect(hostile).to_have_count(1, timeout=WAIT_MS)
            await hostile.click()
            await expect(page.locator("#events")).to_contain_text("<b id=bold>x</b>")
            await expect(page.locator("#events")).to_contain_text("<script>window.pwned=2</script>")
            await expect(page.locator("#doors .alarms")).to_contain_text("forced")
            await expect(hostile.locator(".alarm")).to_have_text("alarm")
            await expect(page.locator(f'#devices li[data-device="{DEVICE}"] .alarm')).to_have_count(0)
            assert await page.locator("#pwned, #bold, #events script").count() == 0
            assert await page.evaluate("window.pwned === undefined")
            assert dialogs == [] and problems == [], (dialogs, problems)
        finally:
            await browser.close()


async def test_a_loopback_bench_that_needs_no_token_lets_the_page_straight_in(chromium, tmp_path):
    """...and the page follows the bench through a restart, with no reload."""
    db = str(tmp_path / "bench.sqlite3")
    bench = await start_bench("127.0.0.1", 0, db)
    try:
        async with pa.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=chromium)
            try:
                page = await browser.new_page()
                await page.goto(bench.http_url + "/")
                await pa.expect(page.locator("#who")).to_have_text("admin: (anonymous, loopback)")
                await pa.expect(page.locator("#link")).to_have_text("live")
                await pa.expect(page.locator("#login")).to_be_hidden()
                await pa.expect(page.locator("#logout")).to_be_hidden()
                assert bench.hub.stats()["admins"] == 1
                await page.evaluate("window.samePage = true")

                port = bench.port
                await bench.stop()
                await pa.expect(page.locator("#link")).to_contain_text("disconnected: retrying")
                bench = await start_bench("127.0.0.1", port, db)
                await pa.expect(page.locator("#link")).to_have_text("live", timeout=WAIT_MS)
                await eventually(lambda: bench.hub.stats()["admins"] == 1, timeout=5)
                assert await page.evaluate("window.samePage === true")
            finally:
                await browser.close()
    finally:
        await bench.stop()
