"""The fault proxy (`doorlink chaos`): a TCP proxy between the agent and its
cloud that drops, resets, blackholes, refuses, delays and throttles, so tests
and technicians can show that no record is lost when the network misbehaves.

proxy.py is the proxy, faults.py the one table of fault kinds, schedule.py
seeded fault plans, console.py the manual console, cli.py the command.
"""

from __future__ import annotations

from host_tools.chaos.console import Command, apply_command, format_stats, parse_command, run_manual
from host_tools.chaos.faults import KINDS, Kind
from host_tools.chaos.proxy import FaultProxy
from host_tools.chaos.schedule import FaultSchedule, Step

__all__ = ["KINDS", "Command", "FaultProxy", "FaultSchedule", "Kind", "Step", "apply_command", "format_stats",
           "parse_command", "run_manual"]
