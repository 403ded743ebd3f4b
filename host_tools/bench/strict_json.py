"""The JSON reader every bench protocol uses: what a peer sends is parsed
strictly, so the bench never stores or re-broadcasts something that is not
JSON (NaN, Infinity) and a deeply nested document is a clear error, not a
crash."""

from __future__ import annotations

import json
from typing import Any


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; accepting them would make us re-emit invalid JSON.
    raise ValueError(f"non-standard JSON constant {name}")


def parse(text: str) -> Any:
    """json.loads that refuses NaN/Infinity and runaway nesting. Raises ValueError."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nesting too deep") from None
