# wss:// against a TLS bench signed by a throwaway CA (trustme): the right CA
# is accepted, a wrong one refused, on both runtimes.
import asyncio

import pytest
from e2e_support import DEVICE, TOKEN, eventually, write_site

from host_tools.bench import start_bench


@pytest.fixture
async def tls_bench(tmp_path, pki):
    b = await start_bench("127.0.0.1", 0, str(tmp_path / "bench.sqlite3"), ssl_context=pki["server"])
    b.store.add_device(DEVICE, TOKEN)
    yield b
    await b.stop()


def _url(bench):
    # The certificate names "localhost"; the host name is verified too.
    return "wss://localhost:%d/ws" % bench.port


async def test_wss_with_the_right_ca_delivers(runtime, tls_bench, agent, tmp_path, pki):
    await agent.start(runtime, write_site(tmp_path, _url(tls_bench), ca_file=pki["ca"]))
    rows = await eventually(lambda: tls_bench.store.telemetry_rows(DEVICE), timeout=20)
    assert rows[0]["record_id"] == 1
    assert "registered as" in agent.output()


async def test_wss_with_a_wrong_ca_is_refused(runtime, tls_bench, agent, tmp_path, pki):
    await agent.start(runtime, write_site(tmp_path, _url(tls_bench), ca_file=pki["wrong"],
                                          backoff_base_s=0.2, backoff_cap_s=0.5))
    await eventually(lambda: agent.output().count("failed") >= 2, timeout=20)
    out = agent.output()
    assert "registered as" not in out
    assert ("certificate" in out.lower() or "CERTIFICATE" in out), out[-800:]
    assert agent.session.proc.returncode is None  # refused, retrying, still running
    assert not tls_bench.store.telemetry_rows(DEVICE)


async def test_wss_on_micropython_needs_a_ca_file(agent, tmp_path):
    await agent.start("micropython", write_site(tmp_path, "wss://localhost:1/ws"))
    assert await asyncio.wait_for(agent.session.wait(), 15) == 2
    assert "field 'ca_file' is required for wss:// on MicroPython" in agent.output()
