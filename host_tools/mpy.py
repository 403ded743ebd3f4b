"""The MicroPython side of the host: finds the `micropython` and `mpy-cross`
commands and builds the folder a board's flash would hold: the agent
precompiled to .mpy, exactly what gets deployed to an ESP32. Precompiling
matters: compiling the agent from source needs more heap than a small
board has.
"""

from __future__ import annotations

import hashlib
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


def build_deploy(dest: str | Path | None = None, cross: str | None = None) -> Path:
    """Compile agent/ to .mpy under dest with `cross` (default: this venv's
    mpy-cross). Only changed files are recompiled, so each compiler needs a
    folder of its own: the default is build/mpy for this venv's mpy-cross,
    build/mpy-<name>-<hash of its path> for another (an older mpy-cross
    must never leave its files where the tests and the runner load theirs).
    Returns dest."""
    if dest is None:
        dest = BUILD / "mpy" if cross is None else build_folder(cross)
    dest = Path(dest)
    cross = cross or tool("mpy-cross")
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


def build_romfs(dest: str | Path | None = None) -> Path:
    """A ROMFS image of build_deploy()'s .mpy (mpremote romfs build), as
    `mpremote romfs deploy` writes it to a board's partition; made again
    only when a module is newer. Returns its path (default build/agent.romfs)."""
    folder = build_deploy()
    image = Path(dest) if dest is not None else BUILD / "agent.romfs"
    newest = max(f.stat().st_mtime for f in folder.rglob("*.mpy"))
    if image.exists() and image.stat().st_mtime >= newest:
        return image
    part = image.with_name(f"{image.name}.{os.getpid()}")   # parallel test workers each build, one wins
    res = subprocess.run([sys.executable, "-m", "mpremote", "romfs", "--no-mpy", "-o", str(part), "build",
                          str(folder)], capture_output=True, text=True, timeout=120, check=False)
    if res.returncode != 0:
        part.unlink(missing_ok=True)
        raise RuntimeError("mpremote romfs build failed: " + res.stdout + res.stderr)
    os.replace(part, image)
    return image


def build_folder(cross: str) -> Path:
    """Where build_deploy(cross=...) puts the .mpy of one compiler."""
    tag = hashlib.sha256(str(Path(cross).resolve()).encode()).hexdigest()[:8]
    return BUILD / f"mpy-{Path(cross).name}-{tag}"


class MpyHeader:
    """The first four bytes of an .mpy file: what a board checks before it
    loads one ("ValueError: incompatible .mpy file" when they do not fit)."""

    def __init__(self, version: int, flags: int, small_int_bits: int) -> None:
        self.version = version
        self.flags = flags                    # byte 2
        self.small_int_bits = small_int_bits  # byte 3

    @property
    def arch(self) -> int:
        """The native-code architecture (v6), 0 for bytecode only."""
        return self.flags >> 2 if self.version >= 6 else 0

    @property
    def sub_version(self) -> int | None:
        """v6 writes its sub-version only into files holding native code."""
        return self.flags & 3 if self.version >= 6 and self.arch else None

    def __str__(self) -> str:
        if self.sub_version is not None:
            return f"v{self.version}.{self.sub_version}"
        return f"v{self.version}"


class BoardMpy:
    """What a firmware loads, from its `sys.implementation._mpy`: the low
    byte is the .mpy version, the next the byte-2 flags a file must carry
    (v6: sub-version in bits 0-1, native architecture above; v5: feature
    flags in bits 0-1)."""

    def __init__(self, mpy: int) -> None:
        self.version = mpy & 0xFF
        self.flags = (mpy >> 8) & 0xFF

    def __str__(self) -> str:
        return f"v{self.version}.{self.flags & 3}" if self.version >= 6 else f"v{self.version}"

    def accepts(self, header: MpyHeader) -> bool:
        """The checks MicroPython's loader makes (py/persistentcode.c)."""
        if header.version != self.version:
            return False
        if self.version < 6:
            return header.flags & 3 == self.flags & 3
        # v6 bytecode loads on every v6.x; native code needs its own ABI.
        return not header.arch or header.flags == self.flags


def read_mpy_header(path: str | Path) -> MpyHeader:
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4 or head[0] != ord("M"):
        raise ValueError(f"{path} is not an .mpy file (no 'M' header)")
    return MpyHeader(head[1], head[2], head[3])


def micropython_env(*paths: str | Path) -> dict[str, str]:
    """Environment whose MICROPYPATH holds `paths` plus the frozen modules
    (asyncio lives there; leaving `.frozen` out makes it unimportable)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(p) for p in paths] + [".frozen"])
    return env
