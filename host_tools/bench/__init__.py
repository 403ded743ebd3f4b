"""The bench cloud: a local server for the device protocols doorlink speaks
(JSON WebSocket, XML biometric, CloudSolution 3.0 HTTP), storing what
devices send in SQLite and letting admins watch and command them.

Layers, one direction only (checked by import-linter, see pyproject.toml):
  app           aiohttp routes, the doors (origins, tokens, deadlines), start/stop (app.py);
                limits.py: the cap on unauthenticated connections, accept errors
  protocols     json_ws.py, xml_ws.py, cloudsolution.py: one per protocol,
                independent of each other, built on the hub and the agent's codecs
  hub           peers, online devices, admins, who may do what, command routing (hub.py)
  store         SQLite (store.py); tokens.py: how tokens are hashed
"""

from .app import Bench, create_app, serve, start_bench, tls_context
from .hub import Policy
from .json_ws import validate_message
from .limits import Limits
from .store import BenchStore, Conflict, StoreError, add_admin, add_device

__all__ = [
    "Bench",
    "BenchStore",
    "Conflict",
    "Limits",
    "Policy",
    "StoreError",
    "add_admin",
    "add_device",
    "create_app",
    "serve",
    "start_bench",
    "tls_context",
    "validate_message",
]
