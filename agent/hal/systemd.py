# systemd's notify protocol (sd_notify(3)), for the CPython agent on a Pi
# run by packaging/doorlink-agent.service (Type=notify, WatchdogSec=): one
# datagram of "KEY=value" lines to the unix socket named by $NOTIFY_SOCKET.
# A plain socket, no library: the protocol is one sendto.
import os
import socket

from agent import log


def _address():
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return None
    if path[0] == "@":   # an abstract socket: its name starts with a NUL byte
        return "\0" + path[1:]
    return path


def notify(*lines):
    """Send "KEY=value" lines to systemd -> True if sent; False when not run
    by systemd (no $NOTIFY_SOCKET) or the socket refused (counted: the
    agent must not stop for its supervisor's sake)."""
    address = _address()
    if address is None:
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.sendto("\n".join(lines).encode(), address)
    except OSError as e:
        log.count("systemd_notify_errors")
        log.warn("systemd", "notify failed: %s" % e)
        return False
    finally:
        sock.close()
    return True


class Watchdog:
    """systemd's watchdog (WatchdogSec=): fed with WATCHDOG=1."""
    __slots__ = ("timeout_ms",)

    def __init__(self, timeout_ms):
        self.timeout_ms = timeout_ms

    def feed(self):
        notify("WATCHDOG=1")


def watchdog():
    """The service's watchdog when systemd runs one for this process
    ($WATCHDOG_USEC, and $WATCHDOG_PID is ours or unset), else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or _address() is None:
        return None
    try:
        if pid and int(pid) != os.getpid():
            return None      # meant for another process (a parent that exec'd us)
        timeout_ms = int(usec) // 1000
    except ValueError:
        log.count("systemd_bad_env")
        log.warn("systemd", "WATCHDOG_USEC/WATCHDOG_PID not numbers (%r, %r): watchdog not fed"
                 % (usec[:20], (pid or "")[:20]))
        return None
    if timeout_ms <= 0:
        return None
    return Watchdog(timeout_ms)
