# What every device-side session codec shares (JSON WebSocket, XML
# biometric, CloudSolution 3.0): the events it reports, its state, its two
# kinds of error, the frame guard and which records it carries. One uplink
# loop per transport drives any of them (agent/uplinks/).
#
# Events are named types with named fields (namedtuple: both runtimes):
#   Registered(acks)        the cloud took our registration; acks: it
#                           acknowledges numbered records
#   Ack(record_id)          the cloud stored every record up to record_id
#   AuthFailed(reason)      registration refused (wrong id or token)
#   Reregister(reason)      the server forgot our session: register again
#   ServerError(reason, records)  the server objects to something we sent;
#                           records: it may be a record (acks will stop there)
#   Command(id, name, payload)  the cloud asks the Thing to do something; id
#                           is echoed in the result (None: nothing to echo)
#   Send(text)              a reply the codec wants sent at once (pong)
#   BadInput(counter, message)  the peer sent something unusable: count it
#                           under `counter`, log `message`, carry on
#   Nothing()               liveness only (a pong, a broadcast)
#
# States (h11 style: the table is the rule, everything else is misuse):
#   CLOSED --hello()--> CONNECTING --registration accepted--> REGISTERED
#   any state --close()--> CLOSED
# Records, pings and command results go out only when REGISTERED; input is
# read only on an open link. Misuse by our own code raises
# LocalProtocolError at once; garbage from the peer is a BadInput event (or,
# where a codec parses a whole reply, RemoteProtocolError): whose fault it
# was is never in doubt.
from collections import namedtuple

from agent.records import KINDS

Registered = namedtuple("Registered", ("acks",))
Ack = namedtuple("Ack", ("record_id",))
AuthFailed = namedtuple("AuthFailed", ("reason",))
Reregister = namedtuple("Reregister", ("reason",))
ServerError = namedtuple("ServerError", ("reason", "records"))
Command = namedtuple("Command", ("id", "name", "payload"))
Send = namedtuple("Send", ("text",))
BadInput = namedtuple("BadInput", ("counter", "message"))
Nothing = namedtuple("Nothing", ())
NOTHING = Nothing()

CLOSED = "closed"
CONNECTING = "connecting"
REGISTERED = "registered"


def shown(value, n=40):
    """A peer's value as an error message quotes it: its repr, cut to n
    characters. A message is logged for every bad input, and a peer's
    value may be as long as a whole frame."""
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."


class LocalProtocolError(Exception):
    """Our own code used the session out of turn (a record before the
    cloud accepted our registration). Not a ValueError on purpose: the
    sender treats ValueError as "this record cannot be encoded" and skips
    it, and a record must never be skipped for our own mistake."""


class RemoteProtocolError(ValueError):
    """The peer's reply is not an answer the protocol allows."""


class Session:
    """A protocol session's state; subclasses add the wire format."""
    __slots__ = ("state",)
    CARRIES = KINDS   # journal record kinds this protocol carries

    def __init__(self):
        self.state = CLOSED

    def carries(self, kind, name):
        """Is a record of this kind (and event name) sent over this protocol?
        Records it does not carry are not journaled for it at all."""
        return kind in self.CARRIES

    def open(self):
        """A new link: the registration is about to be sent."""
        if self.state != CLOSED:
            raise LocalProtocolError("hello() on a %s session: close() the old link first" % self.state)
        self.state = CONNECTING

    def accepted(self):
        """The cloud accepted the registration (called by the codec)."""
        self.state = REGISTERED

    def close(self):
        self.state = CLOSED

    def prepare(self, commands):
        """Load now the code that answering the Thing's `commands` needs
        (the uplink calls this at start, before the journal is read): a
        module imported later, on a heap the journal's records have
        fragmented, may find no block to load into (the user commands'
        modules, on a door board)."""

    def require(self, what):
        if self.state != REGISTERED:
            raise LocalProtocolError("%s on a %s session (only once registered)" % (what, self.state))


class TextSession(Session):
    """A session over a WebSocket: text messages in, events out. The frame
    guard runs before any parsing: binary and oversized frames never reach
    a decoder."""
    __slots__ = ("max_frame",)
    # Whether receive() takes a text message as the UTF-8 bytes the
    # WebSocket layer checked (connect(as_bytes=True)): a session whose
    # parser reads bytes says so, and is never handed a decoded copy.
    AS_BYTES = False

    def __init__(self, max_frame=16384):
        Session.__init__(self)
        self.max_frame = max_frame

    def receive(self, text):
        """One message from the cloud -> one event."""
        if self.state == CLOSED:
            raise LocalProtocolError("receive() on a closed session")
        if not isinstance(text, str) and not self.AS_BYTES:
            return BadInput("bad_frame", "binary frame ignored (the protocol is text)")
        if len(text) > self.max_frame:
            return BadInput("oversized_frame", "message of %d bytes over the %d byte limit ignored"
                            % (len(text), self.max_frame))
        try:
            return self._receive(text)
        except MemoryError:
            # Within max_frame, but decoding it takes more heap than is free
            # (a JSON array takes 8 bytes per element on MicroPython): the
            # peer's message is refused, the link lives on.
            return BadInput("oversized_frame", "message of %d bytes does not fit in free memory: ignored"
                            % len(text))

    def _receive(self, text):
        raise NotImplementedError
