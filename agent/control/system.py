# system/log/get and system/log/delete (the console's last lines, kept on
# flash by agent/log_flash.py: they survive a reboot), system/reboot
# and system/respring (the agent starts again without a board reset; on a
# host both end the process for its supervisor to start it again).
from agent import log
from agent.codecs.ints import is_int
from agent.errors import CommandError

MAX_LINES = 200   # lines one answer holds at most (the flash ring keeps 4 to 8 KB of them)


def register(handlers, device, logs):
    async def log_get(body):
        last = MAX_LINES
        if isinstance(body, dict):
            last = body.get("last", MAX_LINES)
        elif body is not None:
            last = None
        if not is_int(last) or last < 1:
            raise CommandError('system/log/get needs {"last": N}, N a whole number from 1')
        return "\n".join(logs.last(min(last, MAX_LINES)))

    async def log_delete(body):
        logs.clear()
        return None

    async def reboot(body):
        # The reply goes out first: the restart comes a moment later.
        log.warn("agent", "reboot requested over the control channel")
        device.restart_soon(soft=False)
        return None

    async def respring(body):
        log.warn("agent", "agent restart (respring) requested over the control channel")
        device.restart_soon(soft=True)
        return None

    handlers["system/log/get"] = log_get
    handlers["system/log/delete"] = log_delete
    handlers["system/reboot"] = reboot
    handlers["system/respring"] = respring
