# The cloud-control management channel's messages, sans-IO: a request's
# text in, a Request or a Refused out; a reply's text back. No sockets, no
# clocks (the caller passes the device's time for signed requests).
#
# Request:  {"type": "a/b", "body": any JSON, ["ts", "nonce", "sig"]}
# Reply:    {"type": "a/b", "body": ..., "error": ""}; on error the body
#           is left out and `error` says why.
import json

from agent.codecs import json_in
from agent.codecs.session import shown

# json.loads builds every array and object of a message before anything
# sees it: their count is bounded first (agent/codecs/json_in.py), then
# their depth, before anything walks the body.
MAX_CONTAINERS = 256
MAX_DEPTH = 16
MAX_TYPE = 48
TYPE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_/"


class Request:
    __slots__ = ("type", "body", "nonce")

    def __init__(self, req_type, body, nonce=None):
        self.type = req_type
        self.body = body
        self.nonce = nonce   # a signed request's: its reply is bound to it


class Refused:
    """Bad input: answered with `error` under `type` ("" when the request
    named none it could be answered under), counted as `counter`."""
    __slots__ = ("type", "counter", "error")

    def __init__(self, req_type, counter, error):
        self.type = req_type
        self.counter = counter
        self.error = error


def type_ok(t):
    """A request type of the seed's form: lowercase words joined by '/'."""
    if not isinstance(t, str) or not 3 <= len(t) <= MAX_TYPE or "/" not in t:
        return False
    if t[0] == "/" or t[-1] == "/" or "//" in t:
        return False
    for c in t:
        if c not in TYPE_CHARS:
            return False
    return True


def _too_deep(v, depth):
    # Recursion stops at MAX_DEPTH whatever the value holds.
    if depth > MAX_DEPTH:
        return True
    if isinstance(v, dict):
        v = v.values()
    elif not isinstance(v, list):
        return False
    for x in v:
        if (isinstance(x, (dict, list))) and _too_deep(x, depth + 1):
            return True
    return False


def parse(text, max_message, verifier=None, now=0, clock_ok=True):
    """A request's text -> Request, or Refused saying why. `text`: a str,
    or its UTF-8 bytes (checked by the WebSocket layer), parsed without
    being decoded first. `verifier`: an agent.codecs.signing.Verifier when
    the site requires signed requests."""
    if len(text) > max_message:
        # The WebSocket layer refuses longer frames at their header; text
        # can still be longer in characters than the limit in bytes.
        return Refused("", "control_too_big", "message over %d bytes refused" % max_message)
    try:
        msg = json_in.loads(text, MAX_CONTAINERS)
    except json_in.TooComplex as e:
        return Refused("", "control_bad_input", "message with %s refused" % e)
    except ValueError as e:
        return Refused("", "control_bad_input", "malformed JSON refused: %s" % e)
    if not isinstance(msg, dict):
        return Refused("", "control_bad_input", "a request must be a JSON object")
    t = msg.get("type")
    if not type_ok(t):
        return Refused("", "control_bad_input", "request type must be a string like \"app/state\", got %s"
                       % shown(t))
    if _too_deep(msg, 1):
        return Refused(t, "control_bad_input", "body nested over %d levels refused" % MAX_DEPTH)
    if verifier is not None:
        why = verifier.check(t, msg, now, clock_ok)
        if why is not None:
            return Refused(t, "control_refused", why)
        return Request(t, msg.get("body"), msg["nonce"])   # checked: its reply is signed for it
    return Request(t, msg.get("body"))


def reply(req_type, body=None, error=""):
    """The reply's text: `body` only on success (and when there is one)."""
    msg = {"type": req_type, "error": error}
    if body is not None and not error:
        msg["body"] = body
    return json.dumps(msg)
