# The work of the script/* requests (agent/control/scripts.py says what
# they are, and loads this module for one request at a time).
import binascii

from agent import hal, log
from agent.control.files import RESERVE
from agent.control.script_format import FOLDER, MAX_BYTES, MAX_SCRIPTS, SEALED
from agent.errors import CommandError

SEAL_EXTRA = 68        # a sealed script's magic, IV, padding and MAC over its text
LIMIT = MAX_BYTES + SEAL_EXTRA
# Heap a check and compile take per byte of text, measured (tests/e2e/
# test_control_scripts_e2e.py: a 4 KB script needs 91 KB free on the unix
# port; the compiler's parse tree, its qstrs and code in one go).
HEAP_PER_BYTE = 24
# The checker's code, loaded for the check (measured from .mpy: 16 KB).
CHECKER = 16 * 1024


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


def _check(raw, heap, name):
    """A script's bytes -> (its code, compiled made stoppable; its line
    map); CommandError saying why not. `heap`: the board's (MicroPython),
    else 0: checking and compiling a script takes HEAP_PER_BYTE free per
    byte of its text for a moment, asked for first - a door task could be
    the one whose allocation fails."""
    live = hal.heap_live() if heap else None
    need = CHECKER + len(raw) * HEAP_PER_BYTE
    if live is not None and live + need > heap:
        raise CommandError("too large for the heap now: checking %s needs about %d KB free, %d KB free"
                           % (name, need // 1024, (heap - live) // 1024))
    try:
        raw.decode()
    except UnicodeError:
        raise CommandError("a script is UTF-8 text")
    from agent.control.script_check import transform
    code, lines = transform(raw)
    transform = None
    if hal.MICROPYTHON:
        hal.release("agent.control.script_check")   # its 16 KB before the compile's peak
    try:
        return compile(code, "script", "exec"), lines
    except SyntaxError as e:
        raise CommandError("the script does not compile: %s" % e)


class Store:
    """The scripts' folder through the jail. The jail (12 KB of code on a
    board) is loaded when a request first touches the folder and let go
    before a script is checked (the checker and the compile take the most),
    so the two are never loaded at once."""

    def __init__(self, board):
        self.board = board
        self.keys = board["journal"]["path"].rstrip("/")   # where the device key lives
        self.heap = (board.get("heap_kb") or 0) * 1024 if hal.MICROPYTHON else 0
        self._jail = None

    @property
    def jail(self):
        if self._jail is None:
            from agent.control.jail import Jail
            board = self.board
            self._jail = Jail(store_root(board), LIMIT, board["journal"]["max_kb"] * 1024 + RESERVE, self.heap)
        return self._jail

    def let_go(self):
        self._jail = None
        if hal.MICROPYTHON:
            hal.release("agent.control.jail")

    def raw(self, segs):
        return _decode(self.jail.get(segs), "the stored script")

    def text(self, segs):
        """The script's text: stored plain, or sealed and opened in RAM."""
        raw = self.raw(segs)
        self.let_go()
        if raw[:4] == SEALED:
            from agent.control import sealed
            raw = sealed.unseal(sealed.device_key(self.keys), raw, LIMIT)
        return raw

    def put(self, segs, data):
        if not isinstance(data, str) or len(data) > (MAX_BYTES + 2) // 3 * 4:
            raise CommandError('script/put needs {"name", "data": "<base64 of at most %d bytes>"}' % MAX_BYTES)
        raw = _decode(data, "data")
        if raw[:4] == SEALED:
            raise CommandError("a sealed script is sealed by the device: put its text, then script/encrypt")
        self.let_go()
        _check(raw, self.heap, segs[0])
        raw = None
        jail = self.jail
        if len(jail.list([], LIMIT)) >= MAX_SCRIPTS and jail.walk(segs)[2] is None:
            raise CommandError("%d scripts kept already: delete one first" % MAX_SCRIPTS)
        jail.put(segs, data)

    def seal(self, segs):
        from agent.control import sealed
        raw = self.raw(segs)
        if sealed.is_sealed(raw):
            return   # sealed already
        blob = sealed.seal(sealed.device_key(self.keys), raw, LIMIT)
        raw = None
        self.jail.put(segs, binascii.b2a_base64(blob, newline=False).decode())


async def serve(req, body, device):
    """One script/* request (`req`) -> its reply body; CommandError saying why."""
    runner = device.scripts
    if req == "script/stop":
        if runner is not None:
            await runner.stop("script/stop")
        return None
    try:
        store = Store(device.board)
        if req == "script/list":
            return [e["name"] for e in store.jail.list([], LIMIT) if e["type"] == "file"]
        segs = _name(body)
        name = segs[0]
        if req == "script/get":
            data = store.jail.get(segs)
            if _decode(data[:8], "the stored script")[:4] == SEALED:
                raise CommandError("%s is sealed (script/encrypt): its text does not leave the device" % name)
            return data
        if req == "script/put":
            store.put(segs, body.get("data"))
        elif req == "script/delete":
            if runner is not None and runner.running() and runner.run.name == name:
                await runner.stop("deleted")
            store.jail.delete(segs)
        elif req == "script/encrypt":
            store.seal(segs)
        else:   # script/run
            if runner is None:
                raise CommandError("running scripts is off on this device (the site's control.scripts is false)")
            raw = store.text(segs)
            code, lines = _check(raw, store.heap, name)
            raw = None
            await runner.stop("script/run of %s" % name)
            runner.start(name, code, lines)
    except OSError as e:
        raise CommandError("%s: the flash refused (%s)" % (req, e))
    log.info("control", "%s %s done" % (req, name))
    return None
