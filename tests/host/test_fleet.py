"""`doorlink fleet` as a user runs it: many real agents against the local
bench (a subprocess) or a server of one's own, every agent connected, the
records counted by id, nothing lost; a server killed mid-run and every
agent back; a run where nothing can be delivered exits 1; mistakes in
what was asked are one clear line. Small scale here; the README has the
1,000-agent figures."""

import asyncio
import json
import signal
import subprocess
import sys

import pytest

from host_tools.fleet_server import LocalBench, provision, stored_ids
from host_tools.paths import ROOT

DOORLINK = [sys.executable, "-m", "host_tools.cli", "fleet"]
# Short backoff caps: the agents' default (30 s) would make the test wait
# out retries the bench's token checks refused while busy.
QUICK = ["--backoff-cap", "2", "--connect-timeout", "60", "--drain", "20"]


async def fleet(tmp_path, *args, timeout=120):
    """Run `doorlink fleet ...` -> (exit code, printed output, JSON report or None)."""
    report = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(*DOORLINK, *args, "--json", str(report), cwd=str(ROOT),
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    text = out.decode()
    assert "Traceback" not in text, text
    return proc.returncode, text, json.loads(report.read_text()) if report.exists() else None


def delivered_everything(rep, agents):
    assert rep["connect"]["connected"] == agents, rep
    assert rep["losses"] == {"count": 0, "examples": []}, rep
    assert rep["records"]["appended"] > 0 and rep["records"]["acked"] == rep["records"]["appended"], rep


async def test_200_agents_connect_and_lose_nothing(tmp_path):
    code, out, rep = await fleet(tmp_path, "--agents", "200", "--duration", "5", "--rate", "1", *QUICK)
    assert code == 0, out
    delivered_everything(rep, 200)
    # every in-process record was timed from its append to its ack
    assert rep["latency_ms"]["count"] == rep["records"]["appended"]
    assert "200/200" in out and "losses           0" in out
    assert rep["bench"]["usage"]["rss_mb_peak"] > 0


async def test_server_killed_mid_run_every_agent_comes_back_micropython_too(tmp_path):
    code, out, rep = await fleet(tmp_path, "--agents", "30", "--micropython", "2", "--duration", "6",
                                 "--rate", "2", "--restart-server-at", "2", *QUICK)
    assert code == 0, out
    delivered_everything(rep, 30)
    assert rep["agents"]["micropython"] == 2 and rep["bench"]["starts"] == 2
    storm = rep["restart"]
    assert storm["reconnected"] == 30 and storm["delay_s"]["count"] == 30, storm
    # journaled during the outage, delivered after it
    assert rep["latency_ms"]["max"] > 1000 * storm["down_s"]


@pytest.mark.parametrize("uplink", ["xml", "http"])
async def test_xml_and_http_uplinks(tmp_path, uplink):
    code, out, rep = await fleet(tmp_path, "--agents", "15", "--uplink", uplink, "--duration", "3", "--rate", "2",
                                 *QUICK)
    assert code == 0, out
    delivered_everything(rep, 15)
    assert rep["uplink"] == uplink


def devices_csv(path, devices, header=True):
    path.write_text(("id,token\n" if header else "") + "".join(f"{d},{t}\n" for d, t in devices))
    return path


async def test_a_server_of_ones_own_with_devices_from_a_csv(tmp_path):
    devices = [(f"site-door-{i}", f"secret-{i}-x") for i in range(8)]
    bench = LocalBench(tmp_path)
    provision(bench.db, devices)
    await bench.start()
    try:
        csv = devices_csv(tmp_path / "devices.csv", devices)
        code, out, rep = await fleet(tmp_path, "--agents", "8", "--server", bench.url("json"), "--devices", str(csv),
                                     "--duration", "3", "--rate", "2", *QUICK)
    finally:
        await bench.stop()
    assert code == 0, out
    delivered_everything(rep, 8)
    assert not rep["local"] and "bench" not in rep
    # the records went to that server, under the CSV's ids
    stored = stored_ids(bench.db)
    assert sorted(stored) == sorted(d for d, _ in devices)
    assert sum(len(ids) for ids in stored.values()) == rep["records"]["appended"]


async def test_records_nobody_acknowledged_are_losses_and_exit_1(tmp_path):
    # A server that knows none of these tokens: no agent registers, and
    # every punch stays in its journal.
    bench = LocalBench(tmp_path)
    provision(bench.db, [("door-a", "right-token")])
    await bench.start()
    try:
        csv = devices_csv(tmp_path / "devices.csv", [("door-a", "wrong-token"), ("door-b", "any")], header=False)
        code, out, rep = await fleet(tmp_path, "--agents", "2", "--server", bench.url("json"), "--devices", str(csv),
                                     "--duration", "2", "--rate", "2", "--connect-timeout", "2", "--drain", "1")
    finally:
        await bench.stop()
    assert code == 1, out
    assert rep["connect"]["connected"] == 0
    assert rep["losses"]["count"] == rep["records"]["appended"] > 0
    assert "door-a:1" in out


async def test_ctrl_c_ends_the_run_with_partial_figures(tmp_path):
    proc = await asyncio.create_subprocess_exec(*DOORLINK, "--agents", "5", "--duration", "60", cwd=str(ROOT),
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = b""
    async def until_loaded():
        nonlocal seen
        while b"load:" not in seen:
            line = await proc.stdout.readline()
            assert line, seen
            seen += line
    await asyncio.wait_for(until_loaded(), 60)
    await asyncio.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = (seen + out).decode()
    assert proc.returncode == 130, text
    assert "INTERRUPTED" in text and "Traceback" not in text and "losses" in text


@pytest.mark.parametrize("args, words", [
    (["--agents", "0"], "--agents must be from 1"),
    (["--agents", "3", "--micropython", "4"], "--micropython must be from 0 to 3"),
    (["--restart-server-at", "5", "--server", "ws://127.0.0.1:1/ws", "--devices", "x.csv"], "not ours to kill"),
    (["--server", "ws://127.0.0.1:1/ws"], "needs the devices it knows"),
    (["--server", "ws://127.0.0.1:1/ws", "--uplink", "http", "--devices", "x.csv"], "must start with http://"),
    (["--duration", "10", "--restart-server-at", "10"], "within --duration"),
])
def test_mistakes_are_one_clear_line(args, words):
    res = subprocess.run(DOORLINK + args, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert words in res.stderr and "Traceback" not in res.stderr, res.stderr


@pytest.mark.parametrize("rows, words", [
    ("d1,t1\n", "holds 1 devices, fewer than --agents 2"),
    ("d1,t1\n../etc,t2\n", "line 2: the id '../etc'"),
    ("d1,t1\nd1,t2\n", "line 2: the id d1 comes twice"),
    ("d1\nd2,t2\n", "line 1: expected id,token"),
])
def test_bad_devices_csv_names_the_line(tmp_path, rows, words):
    csv = tmp_path / "d.csv"
    csv.write_text(rows)
    res = subprocess.run(DOORLINK + ["--agents", "2", "--server", "ws://127.0.0.1:1/ws", "--devices", str(csv)],
                         cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
