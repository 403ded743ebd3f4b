# app/state (what the device is, in the seed's shape) and app/register (a
# licence code, kept on flash beside the journal).
from agent import __version__, hal, log, small_file
from agent.errors import CommandError

LICENSE = "license"
CODE_LENGTHS = (12, 16)


def _stored_code(folder):
    try:
        data = small_file.read(folder, LICENSE, 16)
    except OSError:
        return ""
    return data.decode() if data and len(data) in CODE_LENGTHS and data.isdigit() else ""


def register(handlers, device):
    folder = device.board["journal"]["folder"]

    async def state(body):
        from agent.codecs.url import split_url
        from agent.hal.netinfo import local_ip
        host = split_url(device.site["control"]["url"], ("ws", "wss"))[1]
        last = log.ring.last(1)
        runner = device.scripts
        return {
            "app": {"version": __version__, "license": _stored_code(folder)},
            "script": {"select": runner.selected if runner else "", "running": bool(runner and runner.running())},
            "system": {"os": hal.RUNTIME if hal.MICROPYTHON else "linux", "name": device.board["name"],
                       "sn": device.site["device_id"], "ip": local_ip(host),
                       # A door controller runs on mains (or PoE): no battery to report.
                       "battery": "mains", "log": last[0] if last else ""},
        }

    async def register_code(body):
        code = body.get("code") if isinstance(body, dict) else None
        if not isinstance(code, str) or len(code) not in CODE_LENGTHS or not code.isdigit():
            raise CommandError('app/register needs {"code": "<12 or 16 digits>"}')
        try:
            small_file.write(folder, LICENSE, code)
        except OSError as e:
            raise CommandError("licence not stored: flash refused the write (%s)" % e)
        log.info("control", "licence code stored")
        return None

    handlers["app/state"] = state
    handlers["app/register"] = register_code
