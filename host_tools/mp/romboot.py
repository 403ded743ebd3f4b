# Runs inside MicroPython: the agent started as a board with a ROMFS
# partition starts it, its modules executed in place from the image (not
# loaded into the heap), the board's main.py calling agent.main.main.
#   micropython -X heapsize=HEAP+IMAGE romboot.py IMAGE --board B.json ...
# A board maps the partition from flash; here the image is read into one
# bytearray, the first allocation of the heap, which the caller adds to the
# heap it gives (host_tools/runner.py): the agent still gets the board's
# budget. MICROPYPATH must not hold the .mpy folder: the agent comes from
# /rom or not at all.
import sys

import vfs


def mount(path):
    import os
    image = bytearray(os.stat(path)[6])
    with open(path, "rb") as f:
        f.readinto(image)
    vfs.mount(vfs.VfsRom(image), "/rom")
    sys.path.insert(0, "/rom")
    return (len(image) + 15) & ~15   # the heap's 16-byte blocks it takes


held = mount(sys.argv[1])
args = sys.argv[2:]
del mount
import agent.hal  # noqa: E402 - after the mount: the agent is in the image

if not agent.__file__.startswith("/rom/"):
    print("romboot: agent imported from %s, not from the image" % agent.__file__)
    sys.exit(2)
agent.hal.rom_held = held
from agent.hal import safe_boot  # noqa: E402

safe_boot.lock_relays(args[args.index("--board") + 1])
from agent.main import main  # noqa: E402

main(args)
