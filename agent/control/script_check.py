# A script's text checked and made stoppable before it is stored or run
# (agent/control/scripts.py loads this for one request and releases it).
#
# A script is a small automation program in a narrow subset of Python that
# both runtimes compile: no import, no class, no lambda, no yield, no
# global, no f-string, no `**`, no name starting "__" (no way to the
# interpreter's insides), of the builtins and of the attributes only those
# allowed below (the rest reach past the script's own API: exec, open,
# getattr, reader._runner, a generator's gi_frame...), and a coroutine only
# ever awaited where it is made. The
# check is a guard against mistakes and against a script wandering off its
# API; it is not a sandbox against whoever holds the control key - they
# can reboot the door anyway. Running scripts stays off unless the site
# turns it on.
#
# Made stoppable: the agent runs on one event loop, so a script that
# never awaits would hold every door. Each loop body and function body
# gets a checkpoint call first, and each comprehension's iterable is
# wrapped in a checking iterator; a checkpoint raises once the script was
# told to stop or has run longer than its slice without `await sleep(...)`
# (agent/control/script_run.py). A checkpoint that a script's
# `try/except` swallows fires again at the next loop turn or call, outside
# that `try`, so the script ends. The top level becomes the body of an
# `async def`, so `await sleep(ms)` works there.
#
# The text is tokenized here (MicroPython has no tokenize or ast module),
# one logical line at a time, and written out again: one output line per
# logical line, plus the inserted checkpoint lines. `lines` maps each
# output line back to the script's own, so an error names the script's
# line, not ours.
import builtins
from array import array

from agent.control.script_format import CHECK, ITER, MAIN, MAX_BYTES
from agent.errors import CommandError

MAX_LINES = 1000    # physical lines (the line map holds two per line)
MAX_DEPTH = 16      # brackets inside brackets (the compilers recurse on them)
MAX_INDENT = 16     # nested blocks
PREFIX = "_dl"      # names of ours; a script's names may not start so

REFUSED_WORDS = {
    "import": "scripts cannot import: their API is door, reader, display, log and sleep",
    "from": "scripts cannot import: their API is door, reader, display, log and sleep",
    "class": "scripts cannot define classes",
    "lambda": "scripts cannot use lambda: write a def",
    "yield": "scripts cannot use yield",
    "global": "scripts cannot use global: keep shared state in a dict or a list",
    "nonlocal": "scripts cannot use nonlocal: keep shared state in a dict or a list",
}
# Builtins: only these (a script's own names must not shadow another
# builtin either). The rest lead past the script's API (exec, open,
# execfile, getattr, license...), end the agent (SystemExit,
# KeyboardInterrupt, BaseException's kin), or run without end in C where no
# checkpoint can reach (map and filter over the list they grow, pow with a
# large exponent, iter(int, 1)).
BUILTINS = ("True", "False", "None", "Ellipsis", "abs", "all", "any", "bin", "bool", "chr", "dict", "divmod",
            "enumerate", "float", "hex", "int", "isinstance", "len", "list", "max", "min", "next", "oct",
            "ord", "print", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
            "tuple", "zip", "ArithmeticError", "AssertionError", "AttributeError", "BaseException",
            "Exception", "IndexError", "KeyError", "LookupError", "NameError", "NotImplementedError",
            "OSError", "OverflowError", "RuntimeError", "StopIteration", "TypeError", "UnicodeError",
            "ValueError", "ZeroDivisionError")
# Attributes, after any dot: only the script's API and the methods of the
# str, list, dict and set a script makes (found on them, not listed here),
# but str.format. Anything else reaches past the API: reader._runner.device
# (the doors: grant() opens one), a coroutine's cr_frame.f_builtins, a
# generator's gi_frame, send/throw/pend_throw (drive a coroutine past the
# event loop: sleep's slice restarts without sleeping), mro; and
# "{0._x}".format follows dots itself (reads any attribute as text).
# `open` is let through: door.open() is what a script's writer tries
# first, and nothing a script can hold has one (the door says so at run).
API = ("lock", "position", "name", "last", "show", "open", "args", "decode")
MADE = ("", [], {}, set())
NOT_MADE = ("format", "format_map")
UNARY = ("-", "+", "~", "not")   # each one in a row is a level the compilers recurse into
COMPOUND = ("if", "elif", "else", "while", "for", "try", "except", "finally", "with", "def", "async")
LOOPS = ("while", "for", "def")   # whose bodies get a checkpoint
OPS3 = ("**=", "//=", ">>=", "<<=", "...")
OPS2 = ("**", "//", ">>", "<<", "->", ":=", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "&=",
        "|=", "^=", "@=")
OPS1 = "+-*/%@&|^~<>()[]{},:.;=!"
OPEN, CLOSE = "([{", ")]}"
NAME_START = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_"
NAME_CHARS = NAME_START + "0123456789"
NL, CR, TAB, SPACE, HASH, DOT, BACKSLASH, PLUS, MINUS = 10, 13, 9, 32, 35, 46, 92, 43, 45
# What each byte can be, looked up: `byte in b"..."` allocates on
# MicroPython, a table's entry does not.
START, NAME, DIGIT, BLANK, QUOTE, HEX = 1, 2, 4, 8, 16, 32
UNDERSCORE = 95
KIND = bytearray(256)
for _c in NAME_START:
    KIND[ord(_c)] = START | NAME
for _c in "0123456789":
    KIND[ord(_c)] = NAME | DIGIT
for _c in " \r\f":
    KIND[ord(_c)] = BLANK
for _c in "'\"":
    KIND[ord(_c)] = QUOTE
for _c in "0123456789abcdefABCDEF":
    KIND[ord(_c)] |= HEX
STRING_PREFIXES = ("", "r", "b", "rb", "br", "u")


# A coroutine is only ever awaited where it is made (`await f(...)`),
# never kept, passed, iterated or driven by hand: on MicroPython a
# coroutine is a generator, and `for _ in sleep(0): pass` restarts the
# slice without sleeping; awaiting anything else (`await [1]`) leaves the
# task asleep for good there. `seen` holds the async defs and the names
# awaited (dicts: a few), and the names used otherwise as bits (a Bloom
# filter allocated once: a set of hundreds of strings kept across the
# check left a heap that could not hold the compiled text). A bit that
# says "maybe" for an async name is made sure of by a second reading, with
# the name in place of the bits, which names the line.
BITS = 4096


def _seen(word, no, tokens, seen):
    asyncs, awaited, bits = seen
    prev = tokens[-1] if tokens else ""
    if prev == "await":
        awaited.setdefault(word, no)
    elif prev == "def" and tokens[-2:-1] == ["async"]:
        asyncs.setdefault(word, no)
    elif type(bits) is str:
        if word == bits:
            _fail(no, "%s is async: call it only as `await %s(...)`" % (word, word))
    else:
        bit = _bit(word)
        bits[bit >> 3] |= 1 << (bit & 7)


def _bit(word):
    # A hash of our own (MicroPython's of a str may be 8 bits), kept under
    # 2**26: a small int on MicroPython, never a long one per character.
    h = 5381
    for c in word:
        h = (h * 33 + ord(c)) & 0xFFFFF
    return h % BITS


def _line_checks(tokens, no, awaited):
    run = 0
    for k, t in enumerate(tokens):
        # Each sign or not in a row is a level the compilers recurse into:
        # CPython raised RecursionError, not SyntaxError, at some 1000.
        run = run + 1 if t in UNARY else 0
        if run > MAX_DEPTH:
            _fail(no, "more than %d signs or nots in a row" % MAX_DEPTH)
        if t == "await" and (tokens[k + 2:k + 3] != ["("] or tokens[k + 1] not in awaited):
            _fail(no, "await takes a call: await sleep(ms), await f(...) of an async def")


def _check_seen(src, seen):
    asyncs, awaited, bits = seen
    for name, no in awaited.items():
        if name not in asyncs:
            _fail(no, "await takes sleep(ms) or the script's own async def functions, not %s" % name)
    for name in asyncs:
        bit = _bit(name)
        if bits[bit >> 3] & 1 << (bit & 7):
            for _ in logical_lines(src, ({}, {}, name)):
                pass


class _Line:
    """One logical line: its first physical line's number, its indent and
    its tokens."""
    __slots__ = ("no", "indent", "tokens")

    def __init__(self, no, indent):
        self.no = no
        self.indent = indent
        self.tokens = []


def _fail(no, why):
    raise CommandError("script line %d: %s" % (no, why))


def _string(src, i, no):
    """The end (exclusive) of the string literal whose quote is at i."""
    q = src[i]
    close = bytes((q, q, q))
    triple = src.startswith(close, i)
    if not triple:
        close = close[:1]
    j = i + len(close)
    n = len(src)
    while j < n:
        c = src[j]
        if c == BACKSLASH:
            j += 2
            continue
        if c == NL and not triple:
            _fail(no, "a string is not closed on its line")
        if src.startswith(close, j):
            return j + len(close)
        j += 1
    _fail(no, "a string is not closed")


def _digits(src, j, kind):
    n = len(src)
    while j < n and (KIND[src[j]] & kind or src[j] == UNDERSCORE):
        j += 1
    return j


def _number(src, i, no):
    """The end (exclusive) of the number at i: 0x/0o/0b and their digits,
    or digits, one point, digits, an exponent and a j. The token is copied
    as it is, so a name running on from it is refused, never carried
    along: `1..__class__` read as one number would take a dunder past
    _word (Python reads the float 1. and its attribute)."""
    n = len(src)
    if src[i] == 0x30 and i + 1 < n and src[i + 1] | 0x20 in (0x78, 0x6f, 0x62):   # 0x 0o 0b
        j = _digits(src, i + 2, HEX)
    else:
        j = _digits(src, i, DIGIT)
        if j < n and src[j] == DOT:
            j = _digits(src, j + 1, DIGIT)
        if j < n and src[j] | 0x20 == 0x65:   # e or E
            j += 1
            if j < n and (src[j] == PLUS or src[j] == MINUS):
                j += 1
            j = _digits(src, j, DIGIT)
        if j < n and src[j] | 0x20 == 0x6a:   # j or J
            j += 1
    if j < n and KIND[src[j]] & NAME:
        _fail(no, "a number runs into a name: put a space between them")
    return j


def logical_lines(src, seen=None):
    """The script's logical lines (`src`: its UTF-8 bytes), in order (a
    generator: one line's tokens held at a time). CommandError for what
    Python would not accept or the subset refuses at the token level.

    It reads bytes, not text: a character taken from a str is a new object
    on MicroPython, one from bytes a small int. Over text, checking a 4 KB
    script made 340 KB of garbage, and the heap it left behind was too
    fragmented to compile the script in."""
    i, n, no = 0, len(src), 1
    line = None
    depth = 0
    while i < n:
        c = src[i]
        if line is None:
            # The start of a logical line: its indent.
            j = i
            while j < n and src[j] == SPACE:
                j += 1
            if j < n and src[j] == TAB:
                _fail(no, "indent with spaces, not tabs")
            if j >= n:
                break
            if src[j] == HASH or src[j] == CR or src[j] == NL:
                # A blank or comment-only line.
                while j < n and src[j] != NL:
                    j += 1
                i, no = j + 1, no + 1
                continue
            line = _Line(no, j - i)
            i = j
            continue
        if c == NL or c == HASH:
            if c == HASH:
                while i < n and src[i] != NL:
                    i += 1
                continue
            i, no = i + 1, no + 1
            if depth == 0:
                if line.tokens:
                    yield line
                line = None
            continue
        if KIND[c] & BLANK:
            i += 1
            continue
        if c == BACKSLASH:
            if src[i + 1:i + 2] == b"\n":
                i, no = i + 2, no + 1
                continue
            _fail(no, "a backslash outside a string")
        start = i
        if KIND[c] & START:
            while i < n and KIND[src[i]] & NAME:
                i += 1
            word = src[start:i].decode()
            if i < n and KIND[src[i]] & QUOTE:
                if word.lower() not in STRING_PREFIXES:
                    _fail(no, "f-strings and %s-strings are not taken: use %% or +" % word)
                end = _string(src, i, no)
                no += src.count(b"\n", i, end)
                i = end
                line.tokens.append(src[start:i].decode())
                continue
            # After a dot it names an attribute (door.open): not a builtin.
            attribute = line.tokens and line.tokens[-1] == "."
            _word(word, no, attribute)
            if seen is not None and not attribute:
                _seen(word, no, line.tokens, seen)
            line.tokens.append(word)
            continue
        if KIND[c] & QUOTE:
            i = _string(src, i, no)
            no += src.count(b"\n", start, i)
            line.tokens.append(src[start:i].decode())
            continue
        if KIND[c] & DIGIT or (c == DOT and i + 1 < n and KIND[src[i + 1]] & DIGIT):
            i = _number(src, i, no)
            line.tokens.append(src[start:i].decode())
            continue
        if c >= 0x80:
            _fail(no, "non-ASCII outside a string")
        op = src[i:i + 3].decode()
        if op not in OPS3:
            op = op[:2]
            if op not in OPS2:
                op = op[:1]
                if op not in OPS1:
                    _fail(no, "character %r is not Python" % op)
        if op in ("**", "**="):
            _fail(no, "** is refused (9**9**9 would hold the processor): multiply instead")
        i += len(op)
        if op in OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                _fail(no, "brackets nested deeper than %d" % MAX_DEPTH)
        elif op in CLOSE:
            depth -= 1
            if depth < 0:
                _fail(no, "%r closes nothing" % op)
        line.tokens.append(op)
    if depth:
        _fail(no, "a bracket is not closed")
    if line is not None and line.tokens:
        yield line


def _word(word, no, attribute):
    why = REFUSED_WORDS.get(word)
    if why:
        _fail(no, why)
    if word.startswith("__") or word.startswith(PREFIX):
        _fail(no, "names starting with __ or %s are not for scripts: %s" % (PREFIX, word))
    if attribute:
        if word not in API and (word in NOT_MADE or not (hasattr(MADE[0], word) or hasattr(MADE[1], word)
                                                         or hasattr(MADE[2], word) or hasattr(MADE[3], word))):
            _fail(no, ".%s is not for scripts: their API is door.lock(), door.position(), door.name, "
                      "reader.last(), display.show(text) and the methods of str, list, dict and set" % word)
    elif word not in BUILTINS and hasattr(builtins, word):
        _fail(no, "%s is not available to scripts" % word)


def _header_colon(tokens):
    """The index of a compound statement's colon (the first one outside
    brackets), or None."""
    depth = 0
    for k, t in enumerate(tokens):
        if t in OPEN:
            depth += 1
        elif t in CLOSE:
            depth -= 1
        elif t == ":" and depth == 0:
            return k
    return None


def _wrap_comprehensions(tokens, no):
    """Each comprehension's iterable inside _dl_it(...): `[x for x in l]`
    -> `[x for x in _dl_it(l)]`. A `for` inside brackets is one."""
    out = []
    depth = 0
    waiting = []   # depths whose `for` has not met its `in` yet
    open_at = []   # depths at which an _dl_it( is open
    for t in tokens:
        if open_at and depth == open_at[-1] and (t in ("for", "if", "async") or t in CLOSE):
            out.append(")")
            open_at.pop()
        if t in OPEN:
            depth += 1
        elif t in CLOSE:
            depth -= 1
        elif t == "for" and depth > 0:
            waiting.append(depth)
        elif t == "in" and waiting and waiting[-1] == depth:
            waiting.pop()
            out.append(t)
            out.append(ITER)
            out.append("(")
            open_at.append(depth)
            continue
        out.append(t)
    if waiting or open_at:
        _fail(no, "a comprehension without its 'in'")
    return out


def transform(src):
    """The script's text -> (the code to compile, lines): its top level as
    `async def _dl_main():`, a checkpoint first in every loop and function
    body, comprehensions' iterables checked. lines[k] is the script's line
    for the code's line k + 1. CommandError for anything refused."""
    if isinstance(src, str):
        src = src.encode()
    if len(src) > MAX_BYTES:
        raise CommandError("script over %d bytes" % MAX_BYTES)
    physical = src.count(b"\n") + 1
    if physical > MAX_LINES:
        raise CommandError("script over %d lines" % MAX_LINES)
    # The output and its line map are allocated whole, first: written line
    # by line as lists, they left one small live string behind every KB of
    # the tokenizer's garbage, and the final join found no free block
    # large enough in a 384 KB heap (MemoryError running an 8 KB script).
    out = Out(2 * len(src) + 64, 2 * physical + 2)
    out.add("async def %s():" % MAIN, 0)
    indents = [0]
    body = False     # the line before was a header whose body starts on the next line
    check = None     # ... and that body gets a checkpoint first (the header's line)
    seen = ({"sleep": 0}, {}, bytearray(BITS // 8))
    for line in logical_lines(src, seen):
        tokens, no, indent = line.tokens, line.no, line.indent
        if indent > indents[-1]:
            if not body:
                _fail(no, "unexpected indent")
            indents.append(indent)
            if len(indents) > MAX_INDENT:
                _fail(no, "blocks nested deeper than %d" % MAX_INDENT)
        elif body:
            _fail(no, "expected an indented block")
        else:
            while indent < indents[-1]:
                indents.pop()
            if indent != indents[-1]:
                _fail(no, "unindent does not match any outer block")
        if check is not None:
            out.add(" " * (indent + 1) + CHECK + "()", check)
        body, check = False, None
        first = tokens[0]
        if first == "async" and (len(tokens) < 2 or tokens[1] != "def"):
            _fail(no, "only 'async def' is taken: no async for or async with")
        _line_checks(tokens, no, seen[1])
        tokens = _wrap_comprehensions(tokens, no)
        if first in COMPOUND:
            colon = _header_colon(tokens)
            if colon is None:
                _fail(no, "a %s statement without its ':'" % first)
            loop = first in LOOPS or first == "async"
            if colon + 1 < len(tokens):
                if loop:   # a one-line body: the checkpoint goes first in it
                    tokens = tokens[:colon + 1] + [CHECK, "(", ")", ";"] + tokens[colon + 1:]
            else:
                body = True
                check = no if loop else None
        out.add(" " * (indent + 1) + " ".join(tokens), no)
    if body:
        _fail(out.last(), "expected an indented block at the end")
    _check_seen(src, seen)
    out.add(" pass", out.last())
    return out.done()


class Out:
    """The made-stoppable text (bytes, as both runtimes' compile() take)
    and its line map (lines[k]: the script's line for the code's line
    k + 1), in room allocated at the start."""

    def __init__(self, size, count):
        self.buf = bytearray(size)
        self.pos = 0
        self.lines = array("H", bytes(2 * count))
        self.n = 0

    def add(self, text, no):
        data = text.encode()
        end = self.pos + len(data) + 1
        # A string over several lines keeps its line breaks: the map too.
        breaks = text.count("\n") + 1
        if end > len(self.buf) or self.n + breaks > len(self.lines):
            _fail(no, "the script grows past its room once made stoppable: shorten it")
        self.buf[self.pos:end - 1] = data
        self.buf[end - 1] = 10
        self.pos = end
        for k in range(breaks):
            self.lines[self.n] = no + k
            self.n += 1

    def last(self):
        return self.lines[self.n - 1]

    def done(self):
        lines = self.lines
        if self.n < len(lines):
            lines = lines[:self.n]
        return bytes(memoryview(self.buf)[:self.pos]), lines
