# Every agent/ file must compile for the ESP32 (mpy-cross is the compiler
# that builds the deployable .mpy files).
import subprocess

import pytest

from host_tools import mpy
from host_tools.paths import AGENT

FILES = sorted(AGENT.rglob("*.py"))


@pytest.mark.parametrize("src", FILES, ids=[str(f.relative_to(AGENT.parent)) for f in FILES])
def test_mpy_cross_accepts(src, tmp_path):
    out = tmp_path / "x.mpy"
    res = subprocess.run([mpy.tool("mpy-cross"), "-o", str(out), str(src)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert out.stat().st_size > 0


def test_agent_outside_hal_imports_no_runtime_specific_module():
    banned = ("machine", "network", "serial", "gpiozero", "lgpio", "websockets",
              "micropython_websockets", "aiohttp", "cbor2", "typing", "dataclasses", "enum",
              "logging", "ssl")
    for src in FILES:
        if "hal" in src.relative_to(AGENT).parts:
            continue
        for line in src.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                top = words[1].split(".")[0]
                assert top not in banned, "%s imports %s" % (src, top)
