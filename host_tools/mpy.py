"""The MicroPython side of the host: finds the `micropython` and `mpy-cross`
commands and builds the folder a board's flash would hold: the agent
precompiled to .mpy, exactly what gets deployed to an ESP32. Precompiling
matters: compiling the agent from source needs more heap than a small
board has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from host_tools.paths import AGENT, BUILD


class ToolMissing(RuntimeError):
    pass


def tool(name: str) -> str:
    """A console script of this venv, else one on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise ToolMissing(f"`{name}` not found: run `make venv` (it installs {name})")
    return found


def _sources() -> Iterator[tuple[Path, Path]]:
    for src in sorted(AGENT.rglob("*.py")):
        yield src, src.relative_to(AGENT.parent)


def build_deploy(dest: str | Path | None = None) -> Path:
    """Compile agent/ to .mpy under dest (default
    build/mpy). Only changed files are recompiled. Returns dest."""
    dest = Path(dest or BUILD / "mpy")
    cross = tool("mpy-cross")
    wanted = set()
    for src, rel in _sources():
        out = dest / rel.with_suffix(".mpy")
        wanted.add(out)
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([cross, "-o", str(out), "-s", str(rel), str(src)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"mpy-cross rejected {src}:\n{res.stderr}")
    for stale in dest.rglob("*.mpy"):
        if stale not in wanted:
            stale.unlink()
    return dest


def micropython_env(*paths: str | Path) -> dict[str, str]:
    """Environment whose MICROPYPATH holds `paths` plus the frozen modules
    (asyncio lives there; leaving `.frozen` out makes it unimportable)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(p) for p in paths] + [".frozen"])
    return env
