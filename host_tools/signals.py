"""Ctrl-C and SIGTERM as an asyncio.Event, so long-running commands stop
cleanly (agent terminated, sockets closed, SQLite flushed)."""

from __future__ import annotations

import asyncio
import signal


def stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # no signal handlers here: KeyboardInterrupt still stops us
    return stop
