"""Bench cloud: a local server for seed 001's JSON WebSocket protocol."""

from .server import Bench, create_app, run_bench, start_bench, tls_context, validate_message
from .store import BenchStore, add_device

__all__ = [
    "Bench",
    "BenchStore",
    "add_device",
    "create_app",
    "run_bench",
    "start_bench",
    "tls_context",
    "validate_message",
]
