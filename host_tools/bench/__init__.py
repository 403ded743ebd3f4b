"""The bench cloud: a local server for the device protocols doorlink speaks
(JSON WebSocket, XML biometric, CloudSolution 3.0 HTTP), storing what
devices send in SQLite and letting admins watch and command them.

Layers, one direction only (checked by import-linter, see pyproject.toml):
  app           aiohttp routes, start/stop (app.py)
  protocols     json_ws.py, xml_ws.py, cloudsolution.py: one per protocol,
                independent of each other, built on the hub and the agent's codecs
  hub           peers, online devices, admins, command routing (hub.py)
  store         SQLite (store.py)
"""

from .app import Bench, create_app, serve, start_bench, tls_context
from .json_ws import validate_message
from .store import BenchStore, add_device

__all__ = [
    "Bench",
    "BenchStore",
    "add_device",
    "create_app",
    "serve",
    "start_bench",
    "tls_context",
    "validate_message",
]
