# script/list, get, put, delete, encrypt, run and stop: small automation
# scripts kept on flash in `.scripts` beside the data root (journal.path),
# through the same jail as file/* (agent/control/jail.py: names checked
# before any file-system call, writes atomic, room left for the journal).
#
# A script's text is checked when it is put and again when it is run
# (agent/control/script_check.py); script/encrypt replaces it with its
# sealed form (agent/control/sealed.py: AES under a key that never leaves
# the board), which script/get does not give back and script/run opens in
# RAM only. Running is off unless the site's control.scripts is true: the
# store works either way, so scripts can be put in place before a site
# turns them on. One script runs at a time (agent/control/script_run.py);
# a new run stops the one before.
#
# This module is what stays loaded: the requests' work is in
# agent/control/script_store.py, loaded with the checker, the jail and the
# sealing code for one request and released after it on MicroPython. The
# runner stays while the site allows scripts.
from agent import hal

FOLDER = ".scripts"
MAX_SCRIPTS = 16
TYPES = ("script/list", "script/get", "script/put", "script/delete", "script/encrypt", "script/run",
         "script/stop")
# What the checker writes and the runner provides (script_check.py,
# script_run.py): kept here, so that neither loads the other.
SEALED = b"DLS1"    # how a sealed script starts (agent/control/sealed.py): told apart without loading it
MAX_BYTES = 4096    # a script's text (a run needs about 13 times that free on a board)
CHECK = "_dl_w"     # the checkpoint
ITER = "_dl_it"     # the checking iterator
MAIN = "_dl_main"   # what the top level becomes
LOADED = ("agent.control.script_store", "agent.control.jail", "agent.control.script_check",
          "agent.control.sealed", "agent.hal.aes")


def register(handlers, device):
    if device.site["control"]["scripts"]:
        from agent.control.script_run import Runner
        device.scripts = Runner(device)

    def handler(req):
        async def serve(body):
            from agent.control import script_store
            try:
                return await script_store.serve(req, body, device)
            finally:
                script_store = None
                if hal.MICROPYTHON:
                    for module in LOADED:
                        hal.release(module)
        return serve

    for req in TYPES:
        handlers[req] = handler(req)
