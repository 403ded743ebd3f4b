# One script at a time, run as a task of its own beside the door's
# (script/run; agent/control/scripts.py keeps the store). The script's
# text was made stoppable by agent/control/script_check.py: a checkpoint
# first in each loop and function body. A checkpoint raises Stopped once
# the script was told to stop (script/stop, another script/run, the
# script deleted) or has held the processor for SLICE_MS without
# `await sleep(ms)` - a door decision waits for a script at most that
# long. Whatever the script raises is logged with the script's own line,
# never the agent's traceback, and the agent goes on.
#
# The script's whole world is its globals: door, reader, display (read
# and show, never open: a door opens for a credential, not for a script),
# log, sleep, and range with a bound.
import asyncio

from agent import log
from agent import records as r
from agent.control.script_format import CHECK, ITER, MAIN
from agent.hal import format_exc, ticks_diff, ticks_ms

SLICE_MS = 20          # the longest a script may run without sleeping
MAX_SLEEP_MS = 86400000
MAX_RANGE = 100000     # steps of one range(): list(range(10**9)) runs in C, past every checkpoint
LOG_BURST = 20         # lines a script may log ...
LOG_WINDOW_MS = 10000  # ... in this long; the rest is counted, not written to flash
STOP_WAIT_S = 2
TEXT = 120             # characters of one logged or shown line


class Stopped(BaseException):
    """A checkpoint's: not an Exception, so a script's `except Exception`
    does not take it (a bare `except:` does, once: the next checkpoint
    fires again, outside that try)."""


def _line(exc, lines):
    """The script's line where `exc` was raised (the deepest frame in the
    script's code), or 0."""
    text = format_exc(exc)
    at = text.rfind('File "script", line ')
    if at < 0:
        return 0
    digits = ""
    for c in text[at + 20:at + 27]:
        if not c.isdigit():
            break
        digits += c
    k = int(digits) - 1 if digits else -1
    return lines[k] if 0 <= k < len(lines) else 0


class Run:
    __slots__ = ("name", "stop", "t0", "task", "started", "done", "logged", "log_t0", "dropped")

    def __init__(self, name):
        self.name = name
        self.stop = None     # why it must stop, once it must
        self.t0 = ticks_ms()  # when it last came back from a sleep
        self.task = None
        self.started = False
        self.done = False
        self.logged = 0
        self.log_t0 = ticks_ms()
        self.dropped = 0


class _Door:
    __slots__ = ("_thing", "name")

    def __init__(self, thing, name):
        self._thing = thing
        self.name = name

    def lock(self):
        """'locked' or 'unlocked', or None on a board without a door."""
        return self._thing.get(self.name + ".lock") if self.name else None

    def position(self):
        """'open', 'closed' (the door sensor), or None without one."""
        return self._thing.get(self.name + ".door") if self.name else None


class _Reader:
    __slots__ = ("_runner",)

    def __init__(self, runner):
        self._runner = runner

    def last(self):
        """The last decision or punch as {"event", "door", "user"}, or None.
        Never the credential: a card number or a PIN stays with the door."""
        last = self._runner.last
        return dict(last) if last else None


class _Display:
    __slots__ = ("_display",)

    def __init__(self, display):
        self._display = display

    def show(self, text):
        """Show a line of text where the terminal shows its last event."""
        if self._display is None:
            raise ValueError("no display on this board")
        self._display.show(str(text)[:TEXT])


class Runner:
    def __init__(self, device):
        self.device = device
        self.run = None       # the Run of the script running or last run
        self.selected = ""    # the script last run (app/state's "select")
        self.last = None      # the last decision or punch, for reader.last()
        device.thing.listen(self._heard)

    def _heard(self, kind, name, value):
        if kind == "event" and name in (r.UNLOCKED, r.ACCESS_DENIED, r.PUNCH):
            self.last = {"event": name, "door": value.get(r.DOOR), "user": value.get(r.USER)}

    def running(self):
        run = self.run
        return run is not None and not run.done

    def start(self, name, code, lines):
        """Start the made-stoppable script, compiled (`code`). The caller
        stopped the one before."""
        run = Run(name)
        g = self._world(run, lines)
        exec(code, g)
        coro = g[MAIN]()
        g = None
        self.run = run
        self.selected = name
        run.task = asyncio.create_task(self._main(run, coro, lines))
        log.info("script", "%s started" % name)

    async def stop(self, why):
        """Stop the running script (if any) and wait, a bounded time, for
        it to end. True if one was running."""
        run = self.run
        if run is None or run.done:
            return False
        run.stop = why
        if run.started:
            # Wakes a sleeping script. One not started yet is not
            # cancelled (its task would end without running, and without
            # saying so): its first checkpoint or sleep stops it.
            run.task.cancel()
        for _ in range(STOP_WAIT_S * 20):
            if run.done:
                break
            await asyncio.sleep(0.05)
        return True

    async def _main(self, run, coro, lines):
        run.started = True
        run.t0 = ticks_ms()
        try:
            await coro
            if run.stop is None:
                log.info("script", "%s finished" % run.name)
        except (Stopped, asyncio.CancelledError):
            pass
        except MemoryError:
            log.count("out_of_memory")
            run.stop = run.stop or "out of memory"
        except (KeyboardInterrupt, SystemExit):
            raise   # the agent's own: no script can name them (script_check.py)
        except BaseException as e:  # noqa: BLE001 - a script's error ends the script, never the agent
            # BaseException: a script's `raise BaseException` would end
            # MicroPython's event loop, which takes only Exception.
            log.count("script_errors")
            try:
                said = "%s at line %d" % (repr(e)[:TEXT], _line(e, lines))
            except Exception:  # noqa: BLE001 - a repr that raises (nested 10,000 deep) or fills the heap
                said = "an exception that cannot be shown"
            log.warn("script", "%s raised %s" % (run.name, said))
        finally:
            coro = None
            run.done = True
            if run.stop is not None:
                log.warn("script", "%s stopped: %s" % (run.name, run.stop))
            if run.dropped:
                log.info("script", "%s: %d log lines not kept (over %d per %d s)"
                         % (run.name, run.dropped, LOG_BURST, LOG_WINDOW_MS // 1000))

    def _world(self, run, lines):
        """The script's globals: its API and the checkpoints."""
        def check():
            if run.stop is not None:
                raise Stopped()
            if ticks_diff(ticks_ms(), run.t0) > SLICE_MS:
                run.stop = "ran over %d ms without await sleep(ms): it would hold the door" % SLICE_MS
                log.count("scripts_overran")
                raise Stopped()

        def checked(iterable):
            for x in iterable:
                check()
                yield x

        async def sleep(ms):
            if not isinstance(ms, (int, float)) or not 0 <= ms <= MAX_SLEEP_MS:
                raise ValueError("sleep(ms): ms from 0 to %d" % MAX_SLEEP_MS)
            check()
            await asyncio.sleep(ms / 1000)
            if run.stop is not None:
                raise Stopped()
            run.t0 = ticks_ms()

        def say(*args):
            now = ticks_ms()
            if ticks_diff(now, run.log_t0) > LOG_WINDOW_MS:
                run.log_t0, run.logged = now, 0
            run.logged += 1
            if run.logged > LOG_BURST:
                run.dropped += 1
                log.count("script_log_dropped")
                return
            text = " ".join(str(a) for a in args)[:TEXT]
            # Shown, not kept: a line break would forge a log line of its own.
            log.info("script", "%s: %s" % (run.name, text.replace("\n", "\\n").replace("\r", "\\r")))

        def bounded(*args):
            steps = range(*args)
            if len(steps) > MAX_RANGE:
                raise ValueError("range over %d steps" % MAX_RANGE)
            return steps

        device = self.device
        doors = device.doors.doors if device.doors is not None else ()
        return {CHECK: check, ITER: checked, "sleep": sleep, "log": say, "print": say, "range": bounded,
                "door": _Door(device.thing, doors[0].name if doors else None), "reader": _Reader(self),
                "display": _Display(device.display)}
