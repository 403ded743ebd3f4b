# screen/snapshot (the display's buffer as a PNG), key/down and key/up (a
# key pressed on the door's keypad, as its Wiegand reader would send it)
# and touch/* (no touch panel here: refused, saying so). The work is in
# agent/control/terminal.py, loaded for one request and released after it
# on MicroPython: an idle door board keeps its heap (about 5 KB there).
from agent import hal

TYPES = ("screen/snapshot", "key/down", "key/up", "touch/down", "touch/move", "touch/up")


def register(handlers, device):
    heap = (device.board.get("heap_kb") or 0) * 1024 if hal.MICROPYTHON else 0

    def handler(req):
        async def serve(body):
            hal.loading("agent.control.terminal")   # loaded per request: into a collected heap
            from agent.control import terminal
            try:
                return await terminal.serve(req, body, device, heap)
            finally:
                terminal = None
                if hal.MICROPYTHON:
                    hal.release("agent.control.terminal")
                    hal.release("agent.codecs.png")
        return serve
    for req in TYPES:
        handlers[req] = handler(req)
