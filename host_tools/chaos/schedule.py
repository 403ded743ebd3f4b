"""Seeded fault schedules: the same seed gives the same faults at the same
times, so a run that lost a record can be replayed exactly. Steps never
overlap, and every mode is healed before the next step, so each fault's
effect can be told apart in the agent's log.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from host_tools.chaos import faults
from host_tools.chaos.proxy import FaultProxy


class Step(NamedTuple):
    at_s: float     # seconds from the start of the schedule
    kind: str       # a name in faults.KINDS
    hold_s: float   # how long the mode lasts before heal(); 0 for a one-shot fault


def scheduled_args(given: Mapping[str, float] | None = None) -> dict[str, float]:
    """The argument each kind that takes one is scheduled with: given, else the table's default."""
    given = dict(given or {})
    for name in given:
        if faults.kind(name).arg is None:
            raise ValueError(f"{name} takes no argument")
    return {k.name: k.check(given.get(k.name, k.default)) for k in faults.KINDS.values() if k.arg}


class FaultSchedule:
    """A reproducible, non-overlapping list of faults.

    Faults that take an argument (delay, throttle) all use the schedule-wide
    one in `args` (kind -> value; the table's default for a kind not given).
    """

    def __init__(self, steps: Iterable[Iterable[float | str]], duration_s: float,
                 args: Mapping[str, float] | None = None, seed: int | None = None) -> None:
        self.steps = [Step(*s) for s in steps]
        for s in self.steps:
            faults.kind(s.kind)
        self.duration_s = float(duration_s)
        self.args = scheduled_args(args)
        self.seed = seed

    @classmethod
    def random(cls, seed: int, duration_s: float, mean_gap_s: float = 2.0,
               kinds: Iterable[str] = tuple(faults.KINDS), args: Mapping[str, float] | None = None,
               ) -> FaultSchedule:
        kinds = faults.kinds(kinds)
        if duration_s <= 0 or mean_gap_s <= 0:
            raise ValueError("duration_s and mean_gap_s must be > 0")
        rng = random.Random(seed)
        steps = []
        t = 0.0  # end of the previous step (its hold included)
        for _ in range(100_000):  # bounded: gaps are >= 1 ms, durations are finite
            at = round(t + max(0.001, rng.expovariate(1.0 / mean_gap_s)), 3)
            if at >= duration_s:
                break
            kind = rng.choice(kinds)
            hold = 0.0
            if faults.KINDS[kind].mode:
                hold = round(min(rng.uniform(0.25, 1.0) * mean_gap_s, duration_s - at), 3)
            steps.append(Step(at, kind, hold))
            t = at + hold
        return cls(steps, duration_s, args, seed)

    def describe(self) -> list[str]:
        out = []
        for s in self.steps:
            what = faults.KINDS[s.kind].label(self.args.get(s.kind))
            if s.hold_s:
                out.append(f"t={s.at_s:.3f}s {what} for {s.hold_s:.3f}s, then heal")
            else:
                out.append(f"t={s.at_s:.3f}s {what}")
        return out

    def apply(self, proxy: FaultProxy, step: Step) -> str:
        """Apply one step to proxy now; returns a description of what was done."""
        return faults.apply(proxy, step.kind, self.args.get(step.kind))

    async def run(self, proxy: FaultProxy, clock_scale: float = 1.0,
                  on_event: Callable[[float, str], None] | None = None) -> list[tuple[float, str]]:
        """Apply the steps at their times, heal after each hold; returns after the duration.

        Real seconds = schedule seconds * clock_scale (0.1 runs ten times as fast).
        on_event(elapsed_real_s, text) is called for every fault and heal.
        Returns the list of (elapsed_real_s, text). Heals on the way out, even if cancelled.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        applied: list[tuple[float, str]] = []

        def note(text: str) -> None:
            elapsed = loop.time() - start
            applied.append((elapsed, text))
            if on_event is not None:
                on_event(elapsed, text)

        async def until(schedule_t: float) -> None:
            delay = start + schedule_t * clock_scale - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

        held = False
        try:
            for step in self.steps:
                await until(step.at_s)
                note(self.apply(proxy, step))
                if step.hold_s:
                    held = True
                    await until(step.at_s + step.hold_s)
                    healed = faults.heal(proxy)
                    held = False
                    note(healed)
            await until(self.duration_s)
        finally:
            if held:
                proxy.heal()
        return applied
