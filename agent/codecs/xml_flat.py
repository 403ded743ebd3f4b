# Flat XML: one root element whose children hold text, which is all the
# XML biometric protocol uses. MicroPython has no `xml` module, and a
# full parser would be both too big and a liability (DTDs, external
# entities, entity expansion), so this reads only the flat subset and
# refuses everything else with XmlError:
#   - DOCTYPE/ENTITY declarations (no DTDs, hence no XXE or billion laughs),
#     entities other than the five predefined ones and &#N; / &#xH;,
#   - CDATA sections, processing instructions other than the <?xml?>
#     declaration, attributes (the protocol never uses them, and silently
#     dropping data a peer sent is worse than saying why),
#   - nested elements, text outside the children, repeated child tags
#     (a dict cannot hold them; the protocol never repeats a tag),
#   - input over max_bytes (checked before parsing) or over max_fields.
# Comments and whitespace between elements are skipped. Values are read
# leniently: whitespace around them is stripped (vendor firmware pads
# text), but whitespace written as a character reference is kept, which is
# how encode() keeps such values exact.
#
# Decoded text is built in an io.StringIO, never a list of pieces: a 16 KB
# value of 3,000 entities is 6,000 pieces, and a list of them takes more
# heap (over 100 KB on MicroPython) than a board has to spare.
import io


class XmlError(ValueError):
    pass


_WS = " \t\r\n"
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"))


def is_name(s):
    # [A-Za-z_][A-Za-z0-9_]*: what the protocol's tags use. (No `re`
    # here: MicroPython's is limited, and this is cheaper anyway.)
    if not s:
        return False
    if s.isalpha() and max(s) <= "z":
        return True   # ASCII letters only, decided in C: most of the protocol's tags
    for i, c in enumerate(s):
        if not ("a" <= c <= "z" or "A" <= c <= "Z" or c == "_" or (i and "0" <= c <= "9")):
            return False
    return True


def _xml_char(n):
    return n in (9, 10, 13) or 0x20 <= n <= 0xD7FF or 0xE000 <= n <= 0xFFFD or 0x10000 <= n <= 0x10FFFF


def _check_chars(s, what):
    if not s:
        return
    try:
        b = s.encode()
    except UnicodeError:
        b = b"\x00"   # CPython: a lone surrogate (refused by the loop below)
    if min(b) >= 0x20 and max(b) < 0x80:
        return   # printable ASCII, the common case: decided in C over bytes (a str's min() makes a str per character)
    for c in s:
        if not _xml_char(ord(c)):
            raise XmlError("%s holds character U+%04X, which XML 1.0 cannot carry" % (what, ord(c)))


# -- encoding -----------------------------------------------------------------

def escape(s):
    """Text -> element content. The five special characters become entities;
    CR and leading/trailing whitespace become character references, because
    parsers turn a raw CR into LF and decode() strips raw padding."""
    _check_chars(s, "value")
    for raw, ent in _ESCAPES:
        if raw in s:
            s = s.replace(raw, ent)
    if "\r" in s:
        s = s.replace("\r", "&#13;")
    start, end = 0, len(s)
    while start < end and s[start] in _WS:
        start += 1
    while end > start and s[end - 1] in _WS:
        end -= 1
    if start == 0 and end == len(s):
        return s
    return _char_refs(s[:start]) + s[start:end] + _char_refs(s[end:])


def _char_refs(s):
    return "".join("&#%d;" % ord(c) for c in s)


def _text(value, tag):
    # bool is an int subclass but has no agreed XML spelling: refuse it
    # rather than send "True" to a terminal that expects 1/0 or Yes/No.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise XmlError("value of <%s> must be str, int or float, not %s" % (tag, type(value).__name__))
    return value if isinstance(value, str) else str(value)


def encode(root, fields):
    """<root> with one child per (tag, value) pair, in the given order (a
    list, because MicroPython dicts are unordered)."""
    if not is_name(root):
        raise XmlError("bad element name %r" % (root,))
    out = ["<%s>\n" % root]
    for tag, value in fields:
        if not is_name(tag):
            raise XmlError("bad element name %r" % (tag,))
        out.append("<%s>%s</%s>\n" % (tag, escape(_text(value, tag)), tag))
    out.append("</%s>" % root)
    return "".join(out)


# -- decoding -----------------------------------------------------------------

def _unescape(raw, tag):
    if "\r" in raw:  # XML line-end normalisation, as every parser does
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    _check_chars(raw, "<%s>" % tag)
    if "&" not in raw:
        return raw
    out = io.StringIO()
    pos = 0
    while True:
        amp = raw.find("&", pos)
        if amp < 0:
            out.write(raw[pos:])
            return out.getvalue()
        out.write(raw[pos:amp])
        semi = raw.find(";", amp, amp + 12)
        if semi < 0:
            raise XmlError("unterminated '&' in <%s> (write & as &amp;)" % tag)
        name = raw[amp + 1:semi]
        out.write(_entity(name, tag))
        pos = semi + 1


def _entity(name, tag):
    if name in _ENTITIES:
        return _ENTITIES[name]
    if name[:1] == "#":
        digits, base = name[1:], 10
        if digits[:1] == "x":
            digits, base = digits[1:], 16
        allowed = "0123456789abcdefABCDEF" if base == 16 else "0123456789"
        if not digits or any(c not in allowed for c in digits):
            raise XmlError("bad character reference &%s; in <%s>" % (name, tag))
        n = int(digits, base)
        if not _xml_char(n):
            raise XmlError("character reference &%s; in <%s> is not an XML character" % (name, tag))
        return chr(n)
    raise XmlError("unknown entity &%s; in <%s> (only the five predefined entities are allowed)" % (name, tag))


class _Reader:
    __slots__ = ("s", "pos")

    def __init__(self, s):
        self.s = s
        self.pos = 0

    def skip_ws(self):
        s, n, p = self.s, len(self.s), self.pos
        while p < n and s[p] in _WS:
            p += 1
        self.pos = p

    def skip_misc(self, prolog):
        """Whitespace, comments and (first thing in the prolog) the XML
        declaration. Refuses DTDs, CDATA and other processing instructions."""
        s = self.s
        decl_ok = prolog
        while True:
            self.skip_ws()
            p = self.pos
            if s.startswith("<!--", p):
                end = s.find("-->", p + 4)
                if end < 0:
                    raise XmlError("unterminated comment")
                self.pos = end + 3
            elif s.startswith("<?", p):
                if not (decl_ok and s.startswith("<?xml", p) and s[p + 5:p + 6] in _WS + "?"):
                    raise XmlError("processing instructions are not supported (only <?xml ...?> first)")
                end = s.find("?>", p)
                if end < 0:
                    raise XmlError("unterminated XML declaration")
                self.pos = end + 2
            elif s.startswith("<![CDATA[", p):
                raise XmlError("CDATA sections are not supported")
            elif s.startswith("<!", p):
                raise XmlError("DOCTYPE/ENTITY declarations are refused (no DTDs)")
            else:
                return
            decl_ok = False

    def tag(self):
        """At '<': reads <name>, <name/> or </name>. Returns (name, kind)
        with kind "open", "empty" or "close"."""
        s = self.s
        p = self.pos + 1
        close = s.startswith("/", p)
        if close:
            p += 1
        end = s.find(">", p)
        if end < 0:
            raise XmlError("unterminated tag at offset %d" % self.pos)
        inner = s[p:end]
        kind = "close" if close else "open"
        if not close and inner.endswith("/"):
            inner, kind = inner[:-1], "empty"
        name = inner.rstrip(_WS)
        if not is_name(name):
            words = name.split()
            if words and is_name(words[0]) and name[0] not in _WS:
                raise XmlError("attributes are not supported (in <%s>)" % inner[:40])
            raise XmlError("bad element name %r" % (name[:40],))
        self.pos = end + 1
        return name, kind


def decode(text, max_bytes=16384, max_fields=64):
    """Flat XML -> (root tag, {child tag: text}). Raises XmlError."""
    if isinstance(text, (bytes, bytearray)):
        size = len(text)
    elif isinstance(text, str):
        # UTF-8 bytes >= characters, and <= 4 * characters: encode (a
        # transient copy) only when the character count cannot decide.
        size = len(text)
        if size <= max_bytes < size * 4:
            size = len(text.encode("utf-8"))
    else:
        raise XmlError("document must be str or bytes, not %s" % type(text).__name__)
    if size > max_bytes:
        raise XmlError("document of %d bytes or more is over the %d byte limit" % (size, max_bytes))
    if not isinstance(text, str):
        try:
            text = str(text, "utf-8")
        except UnicodeError:
            raise XmlError("document is not valid UTF-8") from None

    r = _Reader(text)
    r.skip_misc(True)
    if not text.startswith("<", r.pos):
        raise XmlError("no root element" if r.pos >= len(text) else "text before the root element")
    root, kind = r.tag()
    if kind == "close":
        raise XmlError("unexpected </%s> before the root element" % root)
    fields = {}
    while kind == "open":
        r.skip_misc(False)
        if not text.startswith("<", r.pos):
            raise XmlError("unclosed <%s>" % root if r.pos >= len(text) else
                           "text directly inside <%s> (only child elements may hold text)" % root)
        tag, kind = r.tag()
        if kind == "close":
            if tag != root:
                raise XmlError("mismatched tags: <%s> closed by </%s>" % (root, tag))
            break
        if tag in fields:
            raise XmlError("repeated <%s> (every tag may appear once)" % tag)
        if len(fields) >= max_fields:
            raise XmlError("more than %d fields" % max_fields)
        fields[tag] = _value(r, tag) if kind == "open" else ""
        kind = "open"
    r.skip_misc(False)
    if r.pos < len(text):
        raise XmlError("content after the root element </%s>" % root)
    return root, fields


def _value(r, tag):
    # Text up to </tag>, comments skipped; any other markup is refused.
    s = r.s
    parts = None   # the text before comments, when there are any
    while True:
        lt = s.find("<", r.pos)
        if lt < 0:
            raise XmlError("unclosed <%s>" % tag)
        text = s[r.pos:lt]
        r.pos = lt
        if s.startswith("<!--", lt):
            end = s.find("-->", lt + 4)
            if end < 0:
                raise XmlError("unterminated comment")
            r.pos = end + 3
            if parts is None:
                parts = io.StringIO()
            parts.write(text)
            continue
        if s.startswith("<![CDATA[", lt):
            raise XmlError("CDATA sections are not supported (in <%s>)" % tag)
        if s.startswith("<!", lt) or s.startswith("<?", lt):
            raise XmlError("markup declarations are refused (in <%s>)" % tag)
        name, kind = r.tag()
        if kind != "close":
            raise XmlError("nested element <%s> in <%s> (only flat documents are supported)" % (name, tag))
        if name != tag:
            raise XmlError("mismatched tags: <%s> closed by </%s>" % (tag, name))
        if parts is not None:
            parts.write(text)
            text = parts.getvalue()
        return _unescape(text.strip(_WS), tag)
