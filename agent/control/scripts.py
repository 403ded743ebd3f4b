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
# The checker, the jail and the sealing code are loaded for one request
# and released after it on MicroPython; the runner stays while the site
# allows scripts (about 3 KB).
import binascii

from agent import hal, log
from agent.control.files import RESERVE
from agent.errors import CommandError

FOLDER = ".scripts"
# What the checker writes and the runner provides (script_check.py,
# script_run.py): kept here, so that neither loads the other.
MAX_BYTES = 8192    # a script's text
CHECK = "_dl_w"     # the checkpoint
ITER = "_dl_it"     # the checking iterator
MAIN = "_dl_main"   # what the top level becomes
TYPES = ("script/list", "script/get", "script/put", "script/delete", "script/encrypt", "script/run",
         "script/stop")
MAX_SCRIPTS = 16
SEAL_EXTRA = 68        # a sealed script's magic, IV, padding and MAC over its text
HEAP_PER_BYTE = 12     # heap a run needs per byte of text, at the worst (measured: README)
LOADED = ("agent.control.jail", "agent.control.script_check", "agent.control.sealed", "agent.hal.aes")


def store_root(board):
    return board["journal"]["path"].rstrip("/") + "/" + FOLDER


def _name(body):
    name = body.get("name") if isinstance(body, dict) else None
    from agent.control.jail import check_path
    if not isinstance(name, str):
        raise CommandError('needs {"name": "<script name>"}')
    segs = check_path(name)
    if len(segs) != 1:
        raise CommandError("a script's name is one name, no folders: %r" % name[:64])
    return segs


def _decode(text, what):
    try:
        return binascii.a2b_base64(text)
    except ValueError:
        raise CommandError("%s is not base64" % what)


def register(handlers, device):
    board, cfg = device.board, device.site["control"]
    root = store_root(board)
    reserve = board["journal"]["max_kb"] * 1024 + RESERVE
    heap = (board.get("heap_kb") or 0) * 1024 if hal.MICROPYTHON else 0
    keys = board["journal"]["path"].rstrip("/")
    limit = MAX_BYTES + SEAL_EXTRA
    if cfg["scripts"]:
        from agent.control.script_run import Runner
        device.scripts = Runner(device)

    def jail():
        from agent.control.jail import Jail
        return Jail(root, limit, reserve, heap)

    def text_of(segs):
        # The script's text: stored plain, or sealed and opened in RAM.
        raw = _decode(jail().get(segs), "the stored script")
        from agent.control import sealed
        if sealed.is_sealed(raw):
            raw = sealed.unseal(sealed.device_key(keys), raw, limit)
        return raw

    def check(raw):
        try:
            text = raw.decode()
        except UnicodeError:
            raise CommandError("a script is UTF-8 text")
        from agent.control.script_check import transform
        code, lines = transform(text)
        try:
            compile(code, "script", "exec")
        except SyntaxError as e:
            raise CommandError("the script does not compile: %s" % e)
        return code, lines

    async def serve(req, body):
        runner = device.scripts
        if req == "script/stop":
            if runner is not None:
                await runner.stop("script/stop")
            return None
        if req == "script/list":
            return [e["name"] for e in jail().list([], limit) if e["type"] == "file"]
        segs = _name(body)
        name = segs[0]
        if req == "script/get":
            from agent.control import sealed
            data = jail().get(segs)
            if sealed.is_sealed(_decode(data[:8], "the stored script")):
                raise CommandError("%s is sealed (script/encrypt): its text does not leave the device" % name)
            return data
        if req == "script/put":
            data = body.get("data")
            if not isinstance(data, str) or len(data) > (MAX_BYTES + 2) // 3 * 4:
                raise CommandError('script/put needs {"name", "data": "<base64 of at most %d bytes>"}' % MAX_BYTES)
            raw = _decode(data, "data")
            from agent.control import sealed
            if sealed.is_sealed(raw):
                raise CommandError("a sealed script is sealed by the device: put its text, then script/encrypt")
            check(raw)
            raw = None
            store = jail()
            if len(store.list([], limit)) >= MAX_SCRIPTS and store.walk(segs)[2] is None:
                raise CommandError("%d scripts kept already: delete one first" % MAX_SCRIPTS)
            store.put(segs, data)
        elif req == "script/delete":
            if runner is not None and runner.running() and runner.run.name == name:
                await runner.stop("deleted")
            jail().delete(segs)
        elif req == "script/encrypt":
            from agent.control import sealed
            raw = _decode(jail().get(segs), "the stored script")
            if sealed.is_sealed(raw):
                return None   # sealed already
            blob = sealed.seal(sealed.device_key(keys), raw)
            raw = None
            jail().put(segs, binascii.b2a_base64(blob, newline=False).decode())
        else:   # script/run
            if runner is None:
                raise CommandError("running scripts is off on this device (the site's control.scripts is false)")
            raw = text_of(segs)
            live = hal.heap_live() if heap else None
            if live is not None and live + len(raw) * HEAP_PER_BYTE > heap:
                raise CommandError("too large for the heap now: %s needs about %d KB free, %d KB free"
                                   % (name, len(raw) * HEAP_PER_BYTE // 1024, (heap - live) // 1024))
            code, lines = check(raw)
            raw = None
            await runner.stop("script/run of %s" % name)
            runner.start(name, code, lines)
        log.info("control", "%s %s done" % (req, name))
        return None

    def handler(req):
        async def run(body):
            try:
                return await serve(req, body)
            except OSError as e:
                raise CommandError("%s: the flash refused (%s)" % (req, e))
            finally:
                if hal.MICROPYTHON:
                    for module in LOADED:
                        hal.release(module)
        return run

    for req in TYPES:
        handlers[req] = handler(req)
