# The agent's HttpClient inside MicroPython against the real bench over
# https (BENCH_TLS: the bench serves the `pki` fixture's certificate, made
# out to "localhost"): the right CA, a wrong CA, no CA.
from test_http_transport import assert_round_trip, round_trip

SN = "ZX00000443"
BENCH_DEVICES = {SN: "unused"}
BENCH_TLS = True


async def test_micropython_https_right_and_wrong_ca(bench, pki):
    url = "https://localhost:%d" % bench["port"]
    await assert_round_trip(await round_trip(url, SN, pki["ca"]), url, SN, pki["ca"])
    res = await round_trip(url, SN, pki["wrong"])
    assert "reg" not in res and res["error"].startswith("connect to %s failed" % url), res
    assert "certificate" in res["error"], res
    res = await round_trip(url, SN)
    assert res["error"] == "a ca_file is required for TLS on MicroPython (no system CA store)"
