# What every uplink does the same way, whatever its protocol and transport:
# journal what the Thing reports (through Delivery) before anything is sent;
# keep a link up (serve it; when it fails, log why, back off with jitter,
# start over); run the cloud's commands and send their results back. A
# protocol's uplink supplies _serve_once() (connect, register, run until
# the link fails), _send_result() and, if it holds resources between
# links, _after_link().
import asyncio

from agent import log, records
from agent.backoff import Backoff
from agent.codecs.session import LocalProtocolError
from agent.errors import CommandError, LinkClosed
from agent.hal import format_exc
from agent.uplinks.delivery import Delivery
from agent.uplinks.relink import keep_up

NAME = "uplink"
# Commands running at once. Each is a task holding its payload: a cloud that
# floods commands must not exhaust a board's heap. More are dropped, counted
# (no task, no answer: the cloud sees no result, as when a link dies, and may
# try again).
MAX_COMMANDS = 4


class Uplink:
    def __init__(self, site, thing, journal, session):
        self.site = site
        self.thing = thing
        self.journal = journal
        self.session = session
        self.delivery = Delivery(journal, session.carries)
        session.prepare(thing.commands())
        self.online = False
        self.running = 0   # commands in progress
        self._refusing = False
        self._refusals_in_flight = 0
        self.backoff = Backoff(site["backoff_base_s"], site["backoff_cap_s"], site["backoff_reset_s"])
        thing.listen(self._on_thing)
        thing.command("resend", self.resend)

    # Thing -> journal, durably, before anything is sent. Property changes
    # travel as the events the peripherals raise.
    def _on_thing(self, notification, name, value):
        """Returns False when a record could not be kept (the Thing tells
        whoever raised it: a door action is then not performed)."""
        kind = records.from_thing(notification, name)
        if kind is None:
            return None
        kept = self.delivery.keep(kind, name if kind == records.EVENT else None, value)
        if kept:
            self._kept(kind)
        return kept

    def _kept(self, kind):
        """A record of `kind` was journaled (its id: journal.next_id - 1)."""

    async def resend(self, payload):
        """The cloud asks for its backlog again (CloudSolution getnewlog):
        everything unacknowledged goes out again, oldest first."""
        self.delivery.restart(self.delivery.acks)
        return {"count": self.journal.pending()}

    def _up(self):
        """Registered: the link counts as up from now."""
        self.online = True
        self.thing.update("online", True)
        self.backoff.up()
        log.count("registrations")
        log.info(NAME, "registered as %s" % self.site["device_id"])

    async def run(self):
        """Serve the link, and start over with backoff whenever it fails
        (a supervised task)."""
        await keep_up(NAME, self._serve_link, self.backoff, self._down)

    async def _serve_link(self):
        try:
            await self._serve_once()
        finally:
            self.session.close()

    async def _down(self):
        await self._after_link()
        if self.online:
            self.online = False
            self.thing.update("online", False)

    async def _after_link(self):
        pass

    async def _serve_once(self):
        raise NotImplementedError

    # -- the cloud's commands ---------------------------------------------------
    async def command(self, cmd):
        """Run a session.Command as a task of its own: a slow command (an
        enrolment waits for a finger) must not stall pings, acks or records.
        Past MAX_COMMANDS running, no task is made: the command is refused
        with a result, sent before the next message is read, so a cloud
        that floods commands is slowed to the pace of its own refusals."""
        if self.running >= MAX_COMMANDS:
            log.count("commands_refused")
            if not self._refusing:
                self._refusing = True   # one line per burst, not one per command
                log.warn(NAME, "refusing commands: %d already running (counted as commands_refused)"
                         % MAX_COMMANDS)
            if self._refusals_in_flight >= MAX_COMMANDS:
                # Over HTTP the reply to a refusal can carry the next
                # command, refused in turn from inside that reply: bounded.
                return
            try:
                message = self.session.command_result(cmd.id, _answered_as(cmd), False, None,
                                                      "busy: %d commands already running" % MAX_COMMANDS)
            except (ValueError, TypeError):
                return   # an id or name the protocol cannot carry: nothing to answer with
            self._refusals_in_flight += 1
            try:
                await self._send_result(message)
            finally:
                self._refusals_in_flight -= 1
            return
        self._refusing = False
        self.running += 1
        asyncio.create_task(self._run_command(cmd))

    async def _run_command(self, cmd):
        try:
            await self._answer(cmd)
        except MemoryError:
            # Even the answer could not be built: counted and logged, the
            # task ends cleanly, the link lives on.
            log.count("out_of_memory")
            log.error(NAME, "out of memory answering a command")
        finally:
            self.running -= 1

    async def _answer(self, cmd):
        # A command the codec could not map (name None) is answered, not
        # run: under the name the server used, with the codec's reason.
        name = _answered_as(cmd)
        # A user's payload may hold a PIN, which is never written anywhere.
        # log_tail is not logged: a follower asks every second, and the
        # line would fill the very ring it reads (agent/log_ring.py).
        if name != "log_tail":
            log.info(NAME, "command %s %s" % (name, "(user data)" if str(name).startswith("user") else cmd.payload))
        log.count("commands")
        ok, result, error = False, None, None
        if cmd.name is None:
            error = cmd.payload.get("error") or "command %s is not supported by this device" % name
        else:
            try:
                result = await self.thing.call(name, cmd.payload)
                ok = True
            except CommandError as e:
                error = str(e)
            except MemoryError:
                log.count("out_of_memory")
                error = "out of memory on the device"
            except Exception as e:  # noqa: BLE001 - a broken handler must not kill the link
                log.error(NAME, "command %s crashed: %r\n%s" % (name, e, format_exc(e)))
                error = "internal error: %r" % e
        if not ok:
            log.count("commands_failed")
            log.warn(NAME, "command %s refused: %s" % (name, error))
        # The result travels on the link that is up now, or is lost with the
        # command's link: the cloud sees no result and can retry the command.
        try:
            message = self.session.command_result(cmd.id, name, ok, result, error)
        except (ValueError, TypeError) as e:  # a result the protocol cannot carry (NaN, a character XML lacks)
            if ok:
                log.count("commands_failed")
            message = self.session.command_result(cmd.id, name, False, None, "result not encodable: %s" % e)
        try:
            await self._send_result(message)
        except (LinkClosed, LocalProtocolError) as e:
            log.warn(NAME, "result of %s not delivered: %s" % (name, e))

    async def _send_result(self, message):
        raise NotImplementedError


def _answered_as(cmd):
    """The name a command's result goes out under: its own, else the word
    the server used (a command the codec could not map), else its id."""
    return cmd.name or cmd.payload.get("answer_as") or cmd.id
