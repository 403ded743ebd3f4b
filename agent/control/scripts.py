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

TYPES = ("script/list", "script/get", "script/put", "script/delete", "script/encrypt", "script/run",
         "script/stop")
LOADED = ("agent.control.script_store", "agent.control.script_format", "agent.control.jail",
          "agent.control.script_check", "agent.control.sealed", "agent.hal.aes")


def register(handlers, device):
    if device.site["control"]["scripts"]:
        from agent.control.script_run import Runner
        device.scripts = Runner(device)

    def handler(req):
        async def serve(body):
            hal.loading("agent.control.script_store")   # loaded per request: into a collected heap
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
