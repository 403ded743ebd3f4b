"""The JSON reader every bench protocol uses: what a peer sends is parsed
strictly, so the bench never stores or re-broadcasts something that is not
JSON or not text, and every such input is a clear error, not a crash:

- NaN and Infinity, and numbers too large for a float (`1e400` would read
  as infinity): re-emitting them would be invalid JSON;
- nesting deeper than MAX_DEPTH: every later json.dumps (SQLite, the
  broadcast) must not run out of stack where the parser did not;
- lone surrogates (`"\\ud800"` is valid JSON but not Unicode text): SQLite
  and the WebSocket writer would fail to encode them later, mid-request.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would make us re-emit invalid JSON.
    raise ValueError(f"non-standard JSON constant {name}")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _text(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text holds a lone surrogate (\\ud800-\\udfff): not Unicode") from None


def _check(obj: Any) -> None:
    """Depth and text of every value, without recursion."""
    todo = [(obj, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, str):
            _text(value)
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    _text(key)
                    todo.append((item, depth + 1))
            else:
                todo.extend((item, depth + 1) for item in value)


def parse(text: str) -> Any:
    """json.loads that refuses NaN/Infinity, overflowing numbers, runaway
    nesting and lone surrogates. Raises ValueError."""
    try:
        obj = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        raise ValueError("nesting too deep") from None
    _check(obj)
    return obj
