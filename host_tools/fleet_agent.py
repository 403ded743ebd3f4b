"""The agents of `doorlink fleet`: the real agent code, many at once.

- InProcessAgent: agent.device.Device (supervisor, journal on a folder of
  its own, the site's uplink) as tasks on the fleet's one event loop, with
  no peripherals and no pin adapter (io None: a board without peripherals
  needs none). Punches enter where a fingerprint reader's do: through
  agent.attendance.Attendance (Thing event -> journal -> uplink), from a
  stand-in reader. What the fleet measures it reads without changing the
  agent: the Thing's `online` property (a listener), and the journal's
  ack (observed: the original runs first) for record -> ack latency.
- MicroPythonAgent: a real unix-port process (host_tools/runner.py, the
  board's heap budget) with an emulated fingerprint module; a punch is a
  finger placed and lifted, exactly as on the virtual board.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path

from agent import config
from agent.attendance import Attendance
from agent.device import Device
from agent.journal import Journal
from agent.tasks import cancel_and_wait
from host_tools.rig import REGISTERED
from host_tools.runner import BoardSession, start_board

STOP_S = 10.0            # an agent's tasks end within this once asked to stop
PRESS_TIMEOUT_S = 10.0   # a finger read by a MicroPython agent's reader
LINES_KEPT = 200         # of each MicroPython agent's output, for an error report
# What a MicroPython agent prints when its link goes down (agent/uplinks/base.py).
LINK_DOWN = ("link down", "link failed", "reconnecting in")


class _Reader:
    """Stands in for the fingerprint reader: Attendance hooks its callbacks here."""

    __slots__ = ("on_admin", "on_punch")

    def __init__(self) -> None:
        self.on_punch = None
        self.on_admin = None


class Online:
    """When an agent's link came up and went down (fleet-loop seconds)."""

    def __init__(self) -> None:
        self.up_at: list[float] = []
        self.now = False

    def changed(self, up: bool, at: float) -> None:
        if up and not self.now:
            self.up_at.append(at)
        self.now = up

    def first_up_after(self, t: float) -> float | None:
        return next((u for u in self.up_at if u >= t), None)


class InProcessAgent:
    """One Device on the fleet's loop. `latencies` (shared by the fleet)
    receives record -> ack seconds for every record acknowledged."""

    def __init__(self, device_id: str, board_path: Path, site_path: Path, latencies: list[float]) -> None:
        self.device_id = device_id
        board = config.load_board(str(board_path))
        site = config.load_site(str(site_path))
        board["journal"]["folder"] = config.journal_folder(board, site, str(board_path), "journal.path")
        self.device = Device(board, site, None)
        self.journal = self.device.journal
        self._reader = _Reader()
        self._attendance = Attendance(self.device.thing, self._reader, site["gmt"], "toggle")
        self.online = Online()
        self.device.thing.listen(self._on_thing)
        self._appended: dict[int, float] = {}   # journal id -> when appended, until acked
        self._latencies = latencies
        self._ack = self.journal.ack
        self.journal.ack = self._observed_ack
        self.appended = 0
        self._task: asyncio.Task | None = None

    def _on_thing(self, kind: str, name: str | None, value: object) -> None:
        if kind == "property" and name == "online":
            self.online.changed(bool(value), time.perf_counter())

    def _observed_ack(self, upto: int) -> None:
        before = self.journal.acked
        self._ack(upto)
        now = time.perf_counter()
        for rid in range(before + 1, self.journal.acked + 1):
            t = self._appended.pop(rid, None)
            if t is not None:
                self._latencies.append(now - t)

    def start(self) -> None:
        self._task = asyncio.create_task(self.device.run())

    def punch(self, user: int) -> None:
        before = self.journal.next_id
        self._reader.on_punch(user)
        now = time.perf_counter()
        for rid in range(before, self.journal.next_id):
            self._appended[rid] = now
        self.appended += self.journal.next_id - before

    @property
    def pending(self) -> int:
        return self.journal.next_id - 1 - self.journal.acked

    async def stop(self) -> None:
        if self._task is None:
            return
        self.device.supervisor.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_S)
        except TimeoutError:
            await cancel_and_wait(self._task)
        finally:
            self._task = None
            self.device.close()

    def ids(self) -> tuple[range, int]:
        """(every journal id appended, the highest acknowledged)."""
        return range(1, self.journal.next_id), self.journal.acked


class MicroPythonAgent:
    """The agent under MicroPython's unix port, as `doorlink run` starts it."""

    def __init__(self, device_id: str, board_path: Path, site_path: Path, journal_root: Path) -> None:
        self.device_id = device_id
        self.board_path, self.site_path, self.journal_root = board_path, site_path, journal_root
        self.online = Online()
        self.lines: collections.deque[str] = collections.deque(maxlen=LINES_KEPT)
        self.presses = 0
        self.session: BoardSession | None = None
        self._pressing = False
        self._ids: tuple[range, int] | None = None

    def _line(self, line: str) -> None:
        self.lines.append(line)
        if REGISTERED in line:
            self.online.changed(True, time.perf_counter())
        elif any(s in line for s in LINK_DOWN):
            self.online.changed(False, time.perf_counter())

    async def start(self) -> None:
        self.session = await start_board(self.board_path, self.site_path, runtime="micropython",
                                         on_line=self._line, emulator_port=0, journal=self.journal_root)
        self.session.reader.enroll(1)

    async def press(self) -> None:
        """A finger on the sensor until the agent has read it, then lifted.
        Skipped while the previous press is still going (the rate is a
        ceiling here: a reader takes a few polls per finger)."""
        if self._pressing or self.session is None:
            return
        from agent.codecs import zfm
        reader = self.session.reader
        self._pressing = True
        try:
            searched = reader.answered(zfm.SEARCH)
            reader.place(1)
            await asyncio.to_thread(reader.wait_answered, zfm.SEARCH, searched + 1, PRESS_TIMEOUT_S)
            self.presses += 1
            nofinger = reader.answered(zfm.GEN_IMG, zfm.NO_FINGER)
            reader.lift()
            await asyncio.to_thread(reader.wait_answered, zfm.GEN_IMG, nofinger + 1, PRESS_TIMEOUT_S,
                                    zfm.NO_FINGER)
        except TimeoutError:
            self.lines.append(f"fleet: a finger was not read within {PRESS_TIMEOUT_S:.0f}s")
        finally:
            self._pressing = False

    async def stop(self) -> None:
        if self.session is None:
            return
        session, self.session = self.session, None
        await session.stop()
        # The process is gone: its journal tells what it appended and
        # what its cloud acknowledged.
        journal = Journal(str(self.journal_root / self.device_id), max_bytes=1 << 30, segment_bytes=4096)
        self._ids = (range(1, journal.next_id), journal.acked)
        journal.close()

    def ids(self) -> tuple[range, int]:
        if self._ids is None:
            raise RuntimeError("stop() the agent before asking for its ids")
        return self._ids
