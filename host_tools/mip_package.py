"""agent/package.json: the manifest `mpremote mip install ./agent/package.json`
(or `github:OWNER/doorlink/agent/package.json`) reads to copy the agent's
sources to a board's lib folder (/lib/agent). Generated from agent/ so that
it cannot drift; tests/host/test_esp_firmware.py fails when it has.

    python -m host_tools.mip_package     # rewrites agent/package.json
"""

from __future__ import annotations

import json
import sys

from agent import __version__
from host_tools.paths import AGENT

PACKAGE_JSON = AGENT / "package.json"


def files() -> list[str]:
    """Every .py under agent/, relative to agent/."""
    return sorted(p.relative_to(AGENT).as_posix() for p in AGENT.rglob("*.py"))


def render() -> str:
    """mip's [target, url] pairs: the target relative to the board's lib
    folder, the url to package.json's folder (so the same file works from
    a checkout and from a git host). One pair per line: a file added or
    removed is a one-line diff."""
    urls = ",\n".join("  " + json.dumps(["agent/" + f, f]) for f in files())
    version = json.dumps(__version__)
    return f'{{\n "urls": [\n{urls}\n ],\n "deps": [],\n "version": {version}\n}}\n'


def main() -> int:
    PACKAGE_JSON.write_text(render())
    print(f"wrote {PACKAGE_JSON} ({len(files())} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
