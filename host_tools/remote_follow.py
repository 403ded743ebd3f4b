"""Following a device's log lines through the bench (`doorlink logs
--device`): the device keeps the last lines its console showed in a ring
(agent/log_ring.py); this asks for the new ones with the `log_tail` command,
over the one admin client (host_tools/admin.py), every `interval` seconds.

What a technician must not miss is one line each: lines that fell out of
the ring before they were read, a reboot (a new boot id: its lines are read
from its first), a device offline (waited for), a bench gone (reconnected).
Every wait is bounded: a command by `timeout`, a pause by `interval`, all
of it by the deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from host_tools.admin import WENT_OFFLINE, AdminSession, CommandFailed
from host_tools.cli_common import TOKEN_HINT, CliError
from host_tools.console_follow import stamped, visible

COMMAND = "log_tail"
MAX_LINES = 50          # lines one answer may hold (the device's own cap)
COMMAND_TIMEOUT_S = 10.0
OFFLINE = "-- device offline, waiting --"


class _Reconnect(Exception):
    """The admin connection is no use any more (the bench went away, or a
    command's answer never came and its wait is still pending there)."""


class RemoteFollower:
    """Prints `device`'s new log lines through `emit` until `deadline`
    (time.monotonic(); None: until interrupted)."""

    def __init__(self, server: str, device: str, emit: Callable[[str], None], *, token: str | None = None,
                 interval: float = 1.0, timestamps: bool = False, timeout: float = COMMAND_TIMEOUT_S) -> None:
        self.server, self.device, self._emit, self.token = server, device, emit, token
        self.interval, self.timestamps, self.timeout = interval, timestamps, timeout
        self.boot: int | None = None    # the device's boot id, once heard
        self.after = 0                  # the last line number shown
        self._down: str | None = None   # the marker shown for an outage, until it ends
        self._connected = False
        self._bench_gone = f"-- bench {server} gone, reconnecting --"

    async def run(self, deadline: float | None = None) -> None:
        while not _past(deadline):
            try:
                async with AdminSession(self.server, self.token) as admin:
                    self._connected = True
                    if self._down == self._bench_gone:
                        self._down = None
                        self._line("-- bench back --")
                    await self._follow(admin, deadline)
                return
            except CommandFailed as e:
                if not self._connected:
                    raise CliError(str(e), f"start the bench (doorlink bench) or give its URL: --server {self.server}",
                                   code=1) from None
                self._outage(self._bench_gone)
            except _Reconnect as e:
                self._outage(str(e))
            await self._pause(deadline)

    async def _follow(self, admin: AdminSession, deadline: float | None) -> None:
        while not _past(deadline):
            try:
                res = await admin.command(self.device, COMMAND, {"after": self.after, "max": MAX_LINES},
                                          self.timeout)
            except CommandFailed as e:
                if _past(deadline):
                    return
                self._failed(str(e))
                await self._pause(deadline)
                continue
            except (aiohttp.ClientError, OSError):   # the socket closed under the send
                raise _Reconnect(self._bench_gone) from None
            if not self._take(res):
                await self._pause(deadline)

    def _failed(self, message: str) -> None:
        """A command that failed at the bench or found no answer: waited
        out when the device is away, else the follow ends with the fix."""
        if "is not online" in message or WENT_OFFLINE in message:
            self._outage(OFFLINE)
        elif message.startswith("no result from"):
            raise _Reconnect(OFFLINE)
        elif message == "bench closed the connection":
            raise _Reconnect(self._bench_gone)
        elif "authentication" in message:
            raise CliError(message, TOKEN_HINT, code=1)
        elif "has no" in message and "form" in message:
            raise CliError(f"{self.device}'s protocol cannot carry {COMMAND}: {message}",
                           "log_tail travels over JSON WebSocket and CloudSolution HTTP; an XML terminal's "
                           "log is read on its console: doorlink logs --port", code=1)
        else:
            raise CliError(f"the bench refused {COMMAND} for {self.device}: {message}", code=1)

    def _take(self, res: dict) -> bool:
        """Show one answer's lines -> whether to ask again at once."""
        if not res.get("ok"):
            error = str(res.get("error") or "failed")
            fix = ("its agent predates log_tail: update it (doorlink flash)" if "unknown command" in error
                   else None)
            raise CliError(f"{self.device} refused {COMMAND}: {error}", fix, code=1)
        r = _answer(res.get("result"), self.device)
        self._back()
        if self.boot is not None and r["boot"] != self.boot:
            self.boot = r["boot"]
            self._line(f"-- device rebooted (boot {r['boot']}) --")
            if self.after:
                self.after = 0      # the new boot's lines are numbered from 1: ask from there
                return True
        first = self.boot is None
        self.boot = r["boot"]
        # At the start the lines before the ring are history nobody asked for.
        if r["dropped"] and not first:
            self._line(f"-- {r['dropped']} lines lost (ring overflowed) --")
        for _, text in r["lines"]:
            self._line(visible(text))
        self.after = r["next"]
        # (A device that says "more" and sends nothing is not asked at once.)
        return r["more"] and bool(r["lines"])

    def _outage(self, marker: str) -> None:
        if self._down != marker:
            self._down = marker
            self._line(marker)

    def _back(self) -> None:
        if self._down == OFFLINE:
            self._line("-- device back --")
        self._down = None

    def _line(self, line: str) -> None:
        self._emit(stamped(line) if self.timestamps else line)

    async def _pause(self, deadline: float | None) -> None:
        left = self.interval if deadline is None else min(self.interval, deadline - time.monotonic())
        if left > 0:
            await asyncio.sleep(left)


def _answer(result: object, device: str) -> dict:
    """A log_tail result, checked: a device is not trusted to send one shape."""
    def bad(why: str) -> CliError:
        return CliError(f"{device} answered {COMMAND} with something unreadable ({why})", code=1)

    if not isinstance(result, dict):
        raise bad("not an object")
    for key in ("boot", "next", "dropped"):
        if not isinstance(result.get(key), int) or isinstance(result[key], bool) or result[key] < 0:
            raise bad(f"'{key}' is not a count")
    lines = result.get("lines")
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        raise bad(f"'lines' is not a list of at most {MAX_LINES}")
    for line in lines:
        if (not isinstance(line, list) or len(line) != 2 or not isinstance(line[0], int)
                or not isinstance(line[1], str)):
            raise bad("a line is not [number, text]")
    return {"boot": result["boot"], "next": result["next"], "dropped": result["dropped"], "lines": lines,
            "more": result.get("more") is True}


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline
