# Runs inside MicroPython: the heap the agent's modules take when imported
# from .mpy files on a file system versus from a ROMFS image (bytecode run
# in place). One JSON line of figures.
#   micropython -X heapsize=4m romfs_heap.py fs  MPY_DIR   MODULE...
#   micropython -X heapsize=4m romfs_heap.py rom IMAGE     MODULE...
# MODULE `all` stands for every module of the agent package found there.
# Method: the ROMFS image is read into a bytearray and mounted BEFORE the
# baseline is taken, so its own bytes (which a board keeps in flash) are in
# neither figure; each figure is gc.mem_alloc() after gc.collect() once all
# modules are imported minus the same before, with the modules held in
# sys.modules (as the running agent holds them).
import gc
import json
import os
import sys

import vfs


def package_modules(folder, package):
    found = []
    for entry in os.ilistdir(folder + "/" + package):
        name, kind = entry[0], entry[1]
        if kind == 0x4000:
            found.extend(package_modules(folder, package + "/" + name))
        elif name.endswith(".mpy"):
            module = package + "/" + name[:-4]
            found.append((module[:-9] if name == "__init__.mpy" else module).replace("/", "."))
    return found


def main(mode, where, modules):
    image = None
    if mode == "rom":
        with open(where, "rb") as f:
            image = bytearray(f.read())
        vfs.mount(vfs.VfsRom(image), "/rom")
        where = "/rom"
    elif mode != "fs":
        raise SystemExit("mode must be fs or rom")
    sys.path.insert(0, where)
    if modules == ["all"]:
        modules = sorted(package_modules(where, "agent"))
    gc.collect()
    before = gc.mem_alloc()
    failed = []
    for name in modules:
        try:
            __import__(name)
        except ImportError as e:   # a hal for another runtime (gpiozero, machine)
            failed.append("%s: %s" % (name, e))
    gc.collect()
    took = gc.mem_alloc() - before
    agent = [m for m in sys.modules if m.startswith("agent")]
    print(json.dumps({"mode": mode, "heap_bytes": took, "modules": len(agent), "failed": failed,
                      "image_bytes": len(image) if image else 0, "from": sys.modules["agent"].__file__}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
