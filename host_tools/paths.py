"""Where the project's own files are, for tools run from an editable install
or a checkout."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOARDS = ROOT / "boards"
AGENT = ROOT / "agent"
BUILD = ROOT / "build"


def board_path(name_or_path: str | Path) -> Path:
    """`emulated` -> boards/emulated.json; a path is returned as it is."""
    p = Path(name_or_path)
    if p.suffix == ".json" or p.exists():
        return p
    return BOARDS / (name_or_path + ".json")
