# `mpremote mip install .../agent/package.json` from the checkout, by the
# real mpremote against the virtual board over its pty: the agent's sources
# land in the board's /lib/agent, byte for byte, and import from there.
import hashlib
import json

from test_virtual_board import mpremote

from agent import __version__
from host_tools import mip_package

# The board side: every file under /lib/agent with its sha256, as JSON.
WALK = """
import hashlib, json, os
def walk(d, out):
    for e in os.ilistdir(d):
        p = d + '/' + e[0]
        if e[1] == 0x4000:
            walk(p, out)
        else:
            h = hashlib.sha256()
            with open(p, 'rb') as f:
                while True:   # in pieces: a whole file may not fit the board's heap
                    piece = f.read(512)
                    if not piece:
                        break
                    h.update(piece)
            out[p[len('/lib/agent/'):]] = ''.join('%02x' % b for b in h.digest())
    return out
print(json.dumps(walk('/lib/agent', {})))
"""


async def test_mip_installs_the_agent_from_the_checkout(virtual_board):
    vb = await virtual_board()
    out = await mpremote(vb.port, "mip", "install", str(mip_package.PACKAGE_JSON), timeout=180)
    assert "Installing: /lib/agent/main.py" in out and out.rstrip().endswith("Done"), out

    on_board = json.loads((await mpremote(vb.port, "exec", WALK)).strip().splitlines()[-1])
    in_checkout = {f: hashlib.sha256((mip_package.AGENT / f).read_bytes()).hexdigest() for f in mip_package.files()}
    assert on_board == in_checkout

    out = await mpremote(vb.port, "exec", "import agent; print(agent.__version__, agent.__file__)")
    assert out.split() == [__version__, "/lib/agent/__init__.py"]
