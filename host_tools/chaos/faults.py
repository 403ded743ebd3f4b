"""The fault kinds, written down once.

The schedule, the manual console, the CLI and the proxy's own counters all
read this table, so a kind's argument rule, whether it lasts until heal and
the words used for it cannot drift apart between them: adding a kind here
gives it a console command, a `--kinds` choice, a schedule step and (if it
takes a number) a CLI flag.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class FaultProxy(Protocol):
    """What a fault acts on (proxy.FaultProxy). Named here, not imported:
    the proxy reads this table, so the table must not depend on the proxy."""

    def drop(self) -> int: ...
    def reset(self) -> int: ...
    def blackhole(self) -> None: ...
    def refuse(self) -> None: ...
    def delay(self, seconds: float) -> None: ...
    def throttle(self, bytes_per_s: float) -> None: ...
    def heal(self) -> None: ...


@dataclass(frozen=True)
class Arg:
    """The one number a fault takes: how it is named, checked and shown."""

    what: str       # in messages: "seconds"
    metavar: str    # in help texts: "SECONDS"
    unit: str       # after the number when shown: "0.5s", "2000 B/s"
    zero_ok: bool   # whether 0 is allowed (it never is for a rate)

    @property
    def rule(self) -> str:
        return "a number >= 0" if self.zero_ok else "a number > 0"

    def allows(self, value: float) -> bool:
        return math.isfinite(value) and (value >= 0 if self.zero_ok else value > 0)

    def show(self, value: float) -> str:
        return f"{value:g}{self.unit}"


SECONDS = Arg("seconds", "SECONDS", "s", zero_ok=True)
BYTES_PER_S = Arg("bytes/s", "BYTES_PER_S", " B/s", zero_ok=False)


@dataclass(frozen=True)
class Kind:
    name: str
    help: str                                          # one line, for help texts
    mode: bool                                         # held until heal(), new connections included
    effect: Callable[[FaultProxy, float | None], str]  # do it now; says what was done
    arg: Arg | None = None
    default: float | None = None                       # the argument scheduled faults use

    def __post_init__(self) -> None:
        if (self.arg is None) != (self.default is None):
            raise TypeError(f"fault kind {self.name}: a default argument goes with an argument spec")

    @property
    def synopsis(self) -> str:
        return self.name if self.arg is None else f"{self.name} {self.arg.metavar}"

    @property
    def hint(self) -> str:
        """What the argument is, with an example; '' for a kind without one."""
        if self.arg is None:
            return ""
        return f"{self.arg.what}, e.g. '{self.name} {self.default:g}'"

    def label(self, value: float | None) -> str:
        """The kind with its argument, as logs and stats show it: 'delay 0.5s'."""
        return self.name if self.arg is None or value is None else f"{self.name} {self.arg.show(value)}"

    def check(self, value: float | None) -> float | None:
        """The argument if this kind accepts it; ValueError for the technician otherwise."""
        if (value is None) != (self.arg is None):
            raise self._misused()
        if self.arg is None:
            return None
        value = float(value)
        if not self.arg.allows(value):
            raise ValueError(f"{self.name}: must be {self.arg.rule}, got {value:g}")
        return value

    def parse(self, words: Sequence[str]) -> float | None:
        """The argument as typed after the kind's name: nothing, or one number."""
        if len(words) != (self.arg is not None):
            raise self._misused()
        if self.arg is None:
            return None
        try:
            value = float(words[0])
        except ValueError:
            raise ValueError(f"{self.name}: {words[0]!r} is not a number ({self.hint})") from None
        return self.check(value)

    def _misused(self) -> ValueError:
        if self.arg is None:
            return ValueError(f"{self.name} takes no argument")
        return ValueError(f"{self.name} needs one argument: {self.hint}")


def _drop(proxy: FaultProxy, _: float | None) -> str:
    return f"drop ({proxy.drop()} connections closed)"


def _reset(proxy: FaultProxy, _: float | None) -> str:
    return f"reset ({proxy.reset()} connections reset)"


def _blackhole(proxy: FaultProxy, _: float | None) -> str:
    proxy.blackhole()
    return "blackhole (nothing forwarded, nothing closed)"


def _refuse(proxy: FaultProxy, _: float | None) -> str:
    proxy.refuse()
    return "refuse (new connections are reset)"


def _delay(proxy: FaultProxy, seconds: float | None) -> str:
    proxy.delay(seconds)
    return f"delay {SECONDS.show(seconds)} on every chunk"


def _throttle(proxy: FaultProxy, bytes_per_s: float | None) -> str:
    proxy.throttle(bytes_per_s)
    return f"throttle {BYTES_PER_S.show(bytes_per_s)} per direction"


# In this order: seeded schedules draw from it, so reordering changes every plan.
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("drop", "close every connection cleanly (FIN to both peers)", False, _drop),
    Kind("reset", "abort every connection with a TCP RST", False, _reset),
    Kind("blackhole", "a silent half-open link: nothing forwarded, nothing closed", True, _blackhole),
    Kind("refuse", "reset new connections at once, as a server that is down would", True, _refuse),
    Kind("delay", "forward each chunk SECONDS after it came: latency, order kept", True, _delay,
         SECONDS, 0.5),
    Kind("throttle", "at most BYTES_PER_S bytes/s per direction", True, _throttle, BYTES_PER_S, 2000.0),
)}


def kind(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown fault kind {name!r}; choose from {', '.join(KINDS)}") from None


def kinds(names: Iterable[str]) -> tuple[str, ...]:
    """names, checked: a non-empty selection of the table's kinds."""
    names = tuple(names)
    if not names:
        raise ValueError(f"no fault kinds given; choose from {', '.join(KINDS)}")
    for name in names:
        kind(name)
    return names


def apply(proxy: FaultProxy, name: str, arg: float | None = None) -> str:
    """Inject one fault into proxy now; returns what was done."""
    k = kind(name)
    return k.effect(proxy, k.check(arg))


def heal(proxy: FaultProxy) -> str:
    proxy.heal()
    return "heal (all modes cleared)"


def help_line(synopsis: str, text: str) -> str:
    return f"  {synopsis:<20}  {text}"


def help_lines() -> list[str]:
    """One line per kind, for the console's and the CLI's help."""
    return [help_line(k.synopsis, k.help + (" (until heal)" if k.mode else "")) for k in KINDS.values()]
