# The virtual board's "ROM". Runs under MicroPython's unix port, started by
# host_tools/virtual_board.py once per boot of the board:
#   micropython -X heapsize=NNNk -m board_firmware IMAGE MODE NAME CONTROL
# IMAGE is the flash (a LittleFS image, 4 KB blocks), MODE the REPL the
# board comes up in ("friendly": boot.py then main.py then the friendly
# REPL; "raw": after a soft reset from the raw REPL, main.py is skipped, as
# MicroPython's ports/esp32 main loop does - mpremote relies on it), NAME the
# board's name for the banner, CONTROL a pipe on which the host acknowledges
# each change of the interrupt character.
#
# It mounts the image as "/" - an ESP32's view: the flash IS the file
# system - and is the REPL, byte for byte as MicroPython's
# shared/runtime/pyexec.c. A reset ends this process with an exit code the
# host reads (a fresh interpreter is a fresh heap, as after a real reset).
#
# Nothing from `agent.` is imported here: the agent must be imported from the
# board's flash, and sys.modules would hold the host's copy.
import gc
import io
import os
import sys

import micropython

SOFT_RESET = 70        # exit codes the host reads: soft reset, back to the friendly REPL
SOFT_RESET_RAW = 71    # soft reset, back to the raw REPL (boot.py runs, main.py not)
HARD_RESET = 75        # agent.hal.RESTART_EXIT: what hal.restart() raises on hosts
BLOCK = 4096
# Raw-paste flow control window: neither byte of it (little endian) may be
# 0x0a, which the host turns into \r\n like a board's console.
PASTE_WINDOW = 256
CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
ME = "board_firmware"  # traceback lines of this file are the ROM's, not the user's

out = sys.stdout.buffer
_byte = bytearray(1)


class FileFlash:
    """The flash chip: the image file, one block at a time through seek, so
    a 2 MB flash costs no heap. LittleFS erases (ioctl 6) before it
    programs; a file needs no erase."""

    def __init__(self, f, blocks):
        self.f = f
        self.blocks = blocks

    def readblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.readinto(buf)

    def writeblocks(self, block, buf, offset=0):
        self.f.seek(block * BLOCK + offset)
        self.f.write(buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return BLOCK
        if op == 3:
            self.f.flush()
        return 0


def mount(path):
    f = open(path, "r+b")  # opened before "/" is replaced: the host file stays reachable
    f.seek(0, 2)
    dev = FileFlash(f, f.tell() // BLOCK)
    try:
        vfs = os.VfsLfs2(dev)
    except OSError:
        os.VfsLfs2.mkfs(dev)
        vfs = os.VfsLfs2(dev)
    os.umount("/")
    os.mount(vfs, "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]


def getc():
    """One byte from the UART; the host closing it powers the board off.
    An interrupt that still reaches the ROM (a Ctrl-C racing the end of a
    program) is read as the Ctrl-C byte it was."""
    try:
        if not sys.stdin.buffer.readinto(_byte):
            sys.exit(0)
    except KeyboardInterrupt:
        return CTRL_C
    return _byte[0]


class Interrupt:
    """The interrupt character lives in the host (the UART's IRQ): it sends
    SIGINT for that byte instead of passing it on. Each change waits for
    the host's acknowledgement (numbered: a message sent twice is acked
    twice), so no interrupt meant for the state before arrives after it -
    a late Ctrl-C for a program that just ended would otherwise land in the
    middle of the REPL's own output."""

    def __init__(self, control):
        self.ctl = open(control, "rb")
        self.char = -1
        self.seq = 0
        self.ack = bytearray(1)

    def set(self, char):
        self.char = char
        self.seq = seq = self.seq % 250 + 1
        ack = self.ack
        ack[0] = 0
        sent = hit = False
        while True:
            # An interrupt may be raised at any jump in here, even just after
            # the ack was read: whether it came is in `ack`, not in the flow.
            try:
                if not sent:
                    sys.stderr.buffer.write(b"\x00I%d %d\n" % (char, seq))
                    sent = True
                while ack[0] != seq:
                    if not self.ctl.readinto(ack):
                        break   # the host is gone
                for _ in range(2):   # a backward jump: a pending interrupt is raised here
                    pass
                break
            except KeyboardInterrupt:
                hit = True
        if hit and char >= 0:
            raise KeyboardInterrupt   # pressed just as the program started: it is the program's


def stand_in_modules(intr, name):
    """`micropython.kbd_intr` reaches the host, not the unix port's signal
    handler (its -1 would let SIGINT kill the board). `machine` has what
    mpremote uses (reset) and little else: the emulated hal needs no pins."""
    class Micropython:
        pass
    mp = Micropython()
    for attr in dir(micropython):
        if not attr.startswith("__"):
            setattr(mp, attr, getattr(micropython, attr))
    mp.kbd_intr = intr.set
    sys.modules["micropython"] = mp

    class Machine:
        @staticmethod
        def reset():
            raise SystemExit(HARD_RESET)

        @staticmethod
        def soft_reset():
            raise SystemExit(SOFT_RESET)

        @staticmethod
        def unique_id():
            h = 5381
            for c in name:
                h = (h * 33 + ord(c)) & 0xFFFFFFFFFFFF
            return h.to_bytes(6, "big")

        @staticmethod
        def freq():
            return 240000000
    sys.modules["machine"] = Machine


class Board:
    def __init__(self, mode, name, intr):
        self.mode = mode
        self.name = name
        self.intr = intr
        self.g = {"__name__": "__main__"}   # one __main__ for boot.py, main.py and the REPL, as pyexec has

    def run(self, src, filename, kind):
        """Compile and run; -> None, or the exception it ended with. The
        interrupt character is armed only while the code runs, as pyexec
        arms it: in the REPL a 0x03 is an ordinary byte."""
        try:
            code = compile(src, filename, kind)
        except BaseException as e:  # noqa: BLE001 - SyntaxError, MemoryError: the user's to read
            return e
        del src
        try:
            try:
                self.intr.set(CTRL_C)
                exec(code, self.g)
            finally:
                self.intr.set(-1)
        except BaseException as e:  # noqa: BLE001 - the user's program ends, the board does not
            return e
        return None

    def report(self, e):
        if isinstance(e, SystemExit):
            code = e.args[0] if e.args else None
            if code == HARD_RESET:
                sys.exit(HARD_RESET)
            if code == SOFT_RESET:
                self.soft_reset()
            return   # any other SystemExit ends the script quietly
        buf = io.StringIO()
        sys.print_exception(e, buf)
        text = "".join(line + "\n" for line in buf.getvalue().split("\n") if line and ME not in line)
        sys.stdout.write(text)

    def soft_reset(self):
        out.write(b"MPY: soft reboot\r\n")
        # Files the program left open are closed (their data committed) as
        # a soft reset's heap sweep closes them on a board.
        self.g.clear()
        gc.collect()
        try:
            os.umount("/")
        except OSError:
            pass
        sys.exit(SOFT_RESET_RAW if self.mode == "raw" else SOFT_RESET)

    def run_file(self, path):
        """boot.py / main.py: -> False if it raised (main.py is then skipped
        after boot.py, as on an ESP32)."""
        try:
            with open(path) as f:
                src = f.read()
        except OSError:
            return True
        e = self.run(src, path, "exec")
        if e is not None:
            self.report(e)
        return e is None or isinstance(e, SystemExit)

    def boot(self):
        if self.run_file("boot.py") and self.mode == "friendly":
            self.run_file("main.py")

    def banner(self):
        v = sys.implementation.version
        version = "v%d.%d.%d" % v[:3] + ("-" + v[3] if len(v) > 3 and v[3] else "")
        date = sys.version.split(" on ")[-1]
        out.write(("MicroPython %s on %s; doorlink virtual board with %s\r\n"
                   "Type \"help()\" for more information.\r\n" % (version, date, self.name)).encode())

    # -- raw REPL -----------------------------------------------------------
    def raw_repl(self):
        out.write(b"raw REPL; CTRL-B to exit\r\n")
        while True:
            out.write(b">")
            line = bytearray()
            too_big = False
            while True:
                c = getc()
                if c == CTRL_A:
                    if len(line) == 2 and line[0] == CTRL_E:
                        self.raw_paste(line[1])
                    else:
                        out.write(b"\r\n")
                    return "raw"   # the banner again, as pyexec's raw_repl_reset
                if c == CTRL_B:
                    out.write(b"\r\n")
                    return "friendly"
                if c == CTRL_C:
                    line = bytearray()
                    too_big = False
                elif c == CTRL_D:
                    break
                elif not too_big:
                    try:
                        line.append(c)
                    except MemoryError:
                        line = bytearray()
                        too_big = True
            out.write(b"OK")
            if not line and not too_big:
                out.write(b"\r\n")
                self.soft_reset()
            self.exec_reply(MemoryError("program larger than the heap") if too_big else bytes(line))

    def exec_reply(self, src):
        """Run and answer: output, 0x04, errors, 0x04."""
        e = src if isinstance(src, BaseException) else self.run(src, "<stdin>", "exec")
        if isinstance(e, SystemExit):
            self.report(e)   # a reset does not answer; another SystemExit is quiet
            e = None
        out.write(b"\x04")
        if e is not None:
            self.report(e)
        out.write(b"\x04")

    def raw_paste(self, kind):
        if kind != ord("A"):
            out.write(b"R\x00")
            return
        out.write(b"R\x01" + PASTE_WINDOW.to_bytes(2, "little") + b"\x01")
        src = bytearray()
        remain = PASTE_WINDOW
        err = None
        while True:
            c = getc()
            if c in (CTRL_C, CTRL_D):
                out.write(b"\x04")
                if c == CTRL_C:
                    err = KeyboardInterrupt()
                break
            if err is None:
                try:
                    src.append(c)
                except MemoryError as e:
                    src = None
                    err = e
            remain -= 1
            if remain == 0:
                out.write(b"\x01")
                remain = PASTE_WINDOW
        self.exec_reply(err if err is not None else bytes(src))

    # -- friendly REPL ------------------------------------------------------
    def readline(self):
        """-> (line, None) or (None, control character)."""
        buf = bytearray()
        while True:
            c = getc()
            if c == CTRL_C or (c in (CTRL_A, CTRL_B, CTRL_D, CTRL_E) and not buf):
                return None, c
            if c == 13 or c == 10:
                out.write(b"\r\n")
                return bytes(buf), None
            if c in (8, 127):
                if buf:
                    buf = buf[:-1]
                    out.write(b"\x08 \x08")
            elif c == 27:      # a terminal's escape sequence (arrows): no history here
                getc()
                getc()
            elif c >= 32 or c == 9:
                buf.append(c)
                out.write(bytes((c,)))

    def friendly_repl(self):
        self.banner()
        while True:
            out.write(b">>> ")
            line, ctrl = self.readline()
            if ctrl == CTRL_A:
                out.write(b"\r\n")
                return "raw"
            if ctrl == CTRL_B:
                out.write(b"\r\n")
                self.banner()
            elif ctrl == CTRL_D:
                out.write(b"\r\n")
                self.soft_reset()
            elif ctrl is not None:
                out.write(b"\r\n")
            elif line.strip():
                e = self.run(line, "<stdin>", "single")
                if e is not None:
                    self.report(e)

    def repl(self):
        while True:
            try:
                self.mode = self.raw_repl() if self.mode == "raw" else self.friendly_repl()
            except KeyboardInterrupt:
                pass   # the last net for an interrupt racing the end of a program: the REPL goes on

def main():
    image, mode, name, control = sys.argv[-4:]
    intr = Interrupt(control)
    mount(image)
    stand_in_modules(intr, name)
    board = Board(mode, name, intr)
    del image, control
    gc.collect()
    board.boot()
    board.repl()


main()
