# file/list, file/get, file/put (a file, or a folder) and file/delete,
# jailed in a data root: the folder `.files` in the board's journal.path,
# beside the device journals, `.users` and `.boots` - never above or in them,
# so nothing the cloud names can reach the journal, the user store, the boot
# counter, the log on flash or the board and site files. The checks and the
# work are in agent/control/jail.py, loaded for one request and released
# after it on MicroPython: file access is rare, and an idle door board
# keeps its heap (the code costs about 10 KB there).
from agent import hal, log
from agent.errors import CommandError

FOLDER = ".files"
RESERVE = 65536   # free flash a put leaves beside the journal's cap (user store, log)
TYPES = ("file/list", "file/get", "file/put", "file/delete")


def data_root(board):
    return board["journal"]["path"].rstrip("/") + "/" + FOLDER


def register(handlers, device):
    board, cfg = device.board, device.site["control"]
    root = data_root(board)
    reserve = board["journal"]["max_kb"] * 1024 + RESERVE
    heap = (board.get("heap_kb") or 0) * 1024 if hal.MICROPYTHON else 0
    store = (board.get("access") or {}).get("path") or ""
    off = store.rstrip("/") == root or store.startswith(root + "/")
    if off:
        log.warn("control", "file/* off: access.path %s lies inside the data root %s" % (store, root))

    def handler(req):
        async def serve(body):
            if off:
                raise CommandError("file access off: the user store lies inside the data root %s" % root)
            hal.loading("agent.control.jail")   # loaded per request: into a collected heap
            from agent.control import jail
            try:
                return jail.serve(req, body, root, cfg["max_message"], reserve, heap)
            finally:
                jail = None
                if hal.MICROPYTHON:
                    hal.release("agent.control.jail")
        return serve

    for req in TYPES:
        handlers[req] = handler(req)
