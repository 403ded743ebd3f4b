# A small file on flash that a power cut never tears: the boot counter
# (agent/boot_state.py) and each door's persisted state (peripherals/
# door_state.py). Written as the journal writes its cursor: a new file
# synced, renamed over the old one, the folder synced - so what is read
# back is the old content or the new, never a mix.
import os

from agent.hal import sync_dir, sync_file

ENOENT = 2


def write(folder, name, data):
    """Replace folder/name with `data` (bytes or text). OSError when the
    flash refuses (full, failing, the folder gone)."""
    path = folder + "/" + name
    with open(path + ".tmp", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
        sync_file(f)
    os.rename(path + ".tmp", path)
    sync_dir(folder)


def read(folder, name, max_bytes):
    """folder/name's bytes, at most max_bytes + 1 of them (more than
    max_bytes: not what was written there), or None when there is no such
    file. OSError when it is there but cannot be read."""
    try:
        f = open(folder + "/" + name, "rb")
    except OSError as e:
        if e.args and e.args[0] == ENOENT:
            return None
        raise
    with f:
        return f.read(max_bytes + 1)
