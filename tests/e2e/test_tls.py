# wss:// against a TLS bench signed by a throwaway CA (trustme): the right CA
# is accepted, a wrong one refused, on both runtimes.
import asyncio

import pytest

from e2e_support import DEVICE, eventually


@pytest.fixture
async def tls_bench(rig, pki):
    return await rig.start_bench(ssl_context=pki["server"])


def _url(bench):
    # The certificate names "localhost"; the host name is verified too.
    return "wss://localhost:%d/ws" % bench.port


async def test_wss_with_the_right_ca_delivers(runtime, rig, tls_bench, pki):
    await rig.start_agent(rig.write_site(_url(tls_bench), ca_file=pki["ca"]), runtime=runtime)
    rows = await eventually(lambda: tls_bench.store.telemetry_rows(DEVICE), timeout=20)
    assert rows[0]["record_id"] == 1
    # Its own line too: read from the agent's stdout, which can come after
    # the row the bench stored from the socket (under load it did, once).
    await rig.wait_registered(timeout=10)


async def test_wss_with_a_wrong_ca_is_refused(runtime, rig, tls_bench, pki):
    await rig.start_agent(rig.write_site(_url(tls_bench), ca_file=pki["wrong"], backoff_base_s=0.2,
                                         backoff_cap_s=0.5), runtime=runtime)
    await eventually(lambda: rig.output().count("failed") >= 2, timeout=20)
    out = rig.output()
    assert "registered as" not in out
    assert ("certificate" in out.lower() or "CERTIFICATE" in out), out[-800:]
    assert rig.session.proc.returncode is None  # refused, retrying, still running
    assert not tls_bench.store.telemetry_rows(DEVICE)


async def test_wss_on_micropython_needs_a_ca_file(rig):
    await rig.start_agent(rig.write_site("wss://localhost:1/ws"), runtime="micropython")
    assert await asyncio.wait_for(rig.session.wait(), 15) == 2
    assert "field 'ca_file' is required for wss:// on MicroPython" in rig.output()
