# GET /api/records/{device_id}?kind=...: what the bench stored from a device,
# as JSON (MicroPython tests read it back through tests/mp/mp_support.py).
import pytest

DEV = "api-door-1"
OTHER = "api-door-2"
BENCH_DEVICES = {DEV: "tok_api", OTHER: "tok_api_2"}


def _fill(store):
    store.add_telemetry(DEV, {"temperature": 21.5}, record_id=1, device_time=1700000000)
    store.add_event(DEV, "door_opened", {"door": "front"}, record_id=2)
    store.add_event(OTHER, "door_closed", {"door": "back"}, record_id=1)
    store.add_punch(DEV, "cloudsolution", "21", "42", "2026-06-12T09:15:30", {"action": "FP"})
    store.add_admin_log(DEV, "xml", "7", "1", "42", "EnrollFP", "2026-06-12T09:16:00", {"admin": "1"})


async def _get(session, bench, device, kind=None):
    params = {} if kind is None else {"kind": kind}
    async with session.get(f"{bench.http_url}/api/records/{device}", params=params) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize("kind, rows", [("punch", "punch_rows"), ("event", "event_rows"),
                                        ("telemetry", "telemetry_rows"), ("admin_log", "admin_log_rows")])
async def test_records_are_the_stored_rows_of_that_kind_and_device(bench, session, kind, rows):
    _fill(bench.store)
    status, got = await _get(session, bench, DEV, kind)
    assert status == 200
    assert got == getattr(bench.store, rows)(DEV) and len(got) == 1


async def test_rows_come_oldest_first_with_payloads_decoded(bench, session):
    _fill(bench.store)
    bench.store.add_event(DEV, "door_closed", {"door": "front"}, record_id=3)
    _, got = await _get(session, bench, DEV, "event")
    assert [(r["event_type"], r["record_id"], r["payload"]) for r in got] == [
        ("door_opened", 2, {"door": "front"}), ("door_closed", 3, {"door": "front"})]
    _, got = await _get(session, bench, DEV, "punch")
    assert (got[0]["log_id"], got[0]["user_id"], got[0]["fields"]) == ("21", "42", {"action": "FP"})


async def test_unknown_device_has_no_records(bench, session):
    _fill(bench.store)
    assert await _get(session, bench, "nobody", "punch") == (200, [])


@pytest.mark.parametrize("kind", ["admin", "commands", "", None])
async def test_unknown_or_missing_kind_is_400_with_a_reason(bench, session, kind):
    status, got = await _get(session, bench, DEV, kind)
    assert status == 400
    assert "kind must be one of punch, event, telemetry, admin_log" in got["error"], got
    status, _ = await _get(session, bench, DEV, "punch")
    assert status == 200  # and the bench still answers


async def test_last_n_gives_the_newest_rows_oldest_first(bench, session):
    for i in range(1, 6):
        bench.store.add_event(DEV, "door_opened", {"n": i}, record_id=i)
    async with session.get(f"{bench.http_url}/api/records/{DEV}", params={"kind": "event", "last": "2"}) as r:
        assert r.status == 200
        assert [row["payload"]["n"] for row in await r.json()] == [4, 5]
    for bad in ("0", "-1", "x", "100001", "9" * 30):
        async with session.get(f"{bench.http_url}/api/records/{DEV}", params={"kind": "event", "last": bad}) as r:
            assert r.status == 400 and "last must be a whole number" in (await r.json())["error"], bad
