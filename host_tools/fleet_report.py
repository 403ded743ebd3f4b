"""The figures of `doorlink fleet`, from what the run recorded: quantiles,
the reconnect storm after a server restart, and the printed report.
Pure functions over plain data, so the report reads the same from a live
run and from its --json file."""

from __future__ import annotations

import collections
import math

WINDOW_S = 0.1   # reconnect storm: registrations counted per 100 ms after the server is back


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank) of `values`, None when there are none."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> dict:
    """p50, p99 and max of `values` times `scale`, rounded."""
    def r(v: float | None) -> float | None:
        return None if v is None else round(v * scale, digits)
    return {"p50": r(quantile(values, 0.5)), "p99": r(quantile(values, 0.99)),
            "max": r(max(values) if values else None), "count": len(values)}


def storm(delays: list[float | None]) -> dict:
    """The reconnect storm: `delays` holds, per agent, seconds from the
    server being back to its next registration (None: never). How many
    registered in the busiest 100 ms window, and how spread out they were."""
    came = [d for d in delays if d is not None]
    windows = collections.Counter(int(d // WINDOW_S) for d in came)
    return {"agents": len(delays), "reconnected": len(came),
            "peak_per_100ms": max(windows.values()) if windows else 0,
            "busy_windows": len(windows),
            "delay_s": spread(came, 1.0, 2)}


def _ms(d: dict) -> str:
    return f"p50 {d['p50']} ms, p99 {d['p99']} ms, max {d['max']} ms"


def render(r: dict) -> str:
    """The report as printed."""
    a = r["agents"]
    lines = [f"doorlink fleet: {a['total']} agents ({a['in_process']} in-process CPython, "
             f"{a['micropython']} MicroPython unix port), {r['uplink']} uplink, "
             f"{'local bench' if r['local'] else r['server']}, {r['rate']}/s per agent for {r['duration_s']} s"]
    if r.get("interrupted"):
        lines.append("INTERRUPTED: partial figures")
    c = r.get("connect")
    if c is None:
        return "\n".join(lines + ["no figures: the run ended before the agents started"])
    took = (f"in {c['all_online_s']} s ({c['agents_per_s']} agents/s)" if c["all_online_s"] is not None
            else "(not all within the connect timeout)")
    lines.append(f"{'connected':<16} {c['connected']}/{a['total']} {took}; "
                 f"first registration p50 {c['first_s']['p50']} s, p99 {c['first_s']['p99']} s; "
                 f"refused registrations {c['refused']}")
    rec = r["records"]
    if "appended" not in rec:
        rec = dict(rec, appended="-", acked="-", acked_per_s="-")
    lines.append(f"{'records':<16} appended {rec['appended']}, acknowledged {rec['acked']} "
                 f"({rec['acked_per_s']}/s from the load's start to the last ack)")
    lat = r["latency_ms"]
    lines.append(f"{'record -> ack':<16} {_ms(lat)} ({lat['count']} records of the in-process agents: "
                 "journal append -> the server's ack)")
    s = r.get("restart")
    if s:
        d = s["delay_s"]
        lines.append(f"{'server restart':<16} killed at {s['at_s']} s, listening again after {s['down_s']} s; "
                     f"{s['reconnected']}/{s['agents']} reconnected; delay after it was back p50 {d['p50']} s, "
                     f"p99 {d['p99']} s, max {d['max']} s; busiest 100 ms: {s['peak_per_100ms']} registrations "
                     f"({s['busy_windows']} windows with any); refused meanwhile {s['refused']}")
    b = r.get("bench")
    if b:
        u = b["usage"]
        lines.append(f"{'bench':<16} CPU peak {u['cpu_pct_peak']} %, avg {u['cpu_pct_avg']} %, "
                     f"avg during the load {u.get('cpu_pct_avg_load')} % (of one core); "
                     f"RSS peak {u['rss_mb_peak']} MB, avg {u['rss_mb_avg']} MB; its errors {b['errors']}")
    f = r["fleet"]
    lines.append(f"{'fleet process':<16} CPU avg {f['cpu_pct_avg']} %, during the load "
                 f"{f.get('cpu_pct_avg_load')} % (of one core); event loop lag "
                 f"{_ms(f['loop_lag_ms'])}")
    loss = r["losses"]
    how = "appended ids not in the bench's SQLite" if r["local"] else "appended ids never acknowledged"
    lines.append(f"{'losses':<16} {loss['count']} ({how})"
                 + (f": {loss['examples']}" if loss["count"] else ""))
    return "\n".join(lines)
