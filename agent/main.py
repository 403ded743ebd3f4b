# Agent entry point, the same on every runtime:
#   micropython -m agent.main --board B.json --site S.json [--server URL] [--control URL] [--emulator HOST:PORT]
#   python -m agent.main ...
# A bad config file stops the agent at once with a message naming the file
# and field (exit 2); everything after start-up is supervised and restarted.
import sys

# Relays to their locked level before anything that can fail, the argument
# parser included (docs/door-controller.md, section 2).
if __name__ == "__main__" and "--board" in sys.argv[:-1]:
    from agent.hal import safe_boot
    safe_boot.lock_relays(sys.argv[sys.argv.index("--board") + 1])

import asyncio

from agent import hal, log
from agent.errors import ConfigError

USAGE = ("usage: agent.main --board BOARD.json --site SITE.json [--server URL] [--control URL] "
         "[--emulator HOST:PORT] [--journal DIR] [--serial TTY] [--log-level debug|info|warn|error]")


def parse_args(argv):
    opts = {"board": None, "site": None, "server": None, "control": None, "emulator": None, "journal": None,
            "serial": None, "log_level": "info"}
    i = 0
    while i < len(argv):
        key = argv[i]
        name = key[2:].replace("-", "_") if key.startswith("--") else None
        if name not in opts or i + 1 >= len(argv):
            raise ValueError("unexpected argument %r" % key)
        opts[name] = argv[i + 1]
        i += 2
    if not opts["board"] or not opts["site"]:
        raise ValueError("--board and --site are required")
    if opts["log_level"] not in log.LEVELS:
        raise ValueError("--log-level must be one of %s" % ", ".join(log.LEVELS))
    if opts["emulator"]:
        # Only emulated boards take this, and only at start: released after (RAM).
        from agent.codecs.url import split_hostport
        try:
            opts["emulator"] = split_hostport(opts["emulator"])
        except ValueError as e:
            raise ValueError("--emulator must be HOST:PORT: %s" % e)
        hal.release("agent.codecs.url")
    return opts


def _stop(error):
    # One line, no traceback: the technician fixes a file, not the code.
    print("config error: %s" % error)
    sys.exit(2)


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    if "--board" in argv[:-1]:
        # Called from a board's main.py (agent.main.main([...])) rather than
        # run as a module: the relays have not been locked yet. Once only.
        from agent.hal import safe_boot
        if not safe_boot.done:
            safe_boot.lock_relays(argv[argv.index("--board") + 1])
    try:
        opts = parse_args(argv)
    except ValueError as e:
        print("error: %s\n%s" % (e, USAGE))
        sys.exit(2)
    log.set_level(opts["log_level"])
    from agent import config
    try:
        board = config.load_board(opts["board"])
        site = config.load_site(opts["site"], opts["server"], opts["control"])
        if hal.RUNTIME not in board["runtimes"]:
            raise ConfigError(opts["board"], "runtimes",
                              "does not list %s, the runtime running now" % hal.RUNTIME)
        for url in (site["server"], site["control"] and site["control"]["url"]):
            tls = url and (url.startswith("wss://") or url.startswith("https://"))
            if tls and hal.MICROPYTHON and not site["ca_file"]:
                raise ConfigError(opts["site"], "ca_file", "is required for %s:// on MicroPython "
                                  "(a board has no system CA store)" % url.split(":")[0])
        if opts["serial"]:
            for p in board["peripherals"]:
                if p["type"] == "fingerprint":
                    p["port"] = opts["serial"]
        if opts["journal"]:
            board["journal"]["path"] = opts["journal"]
            named = ("the command line", "--journal")
        else:
            named = (opts["board"], "journal.path")
        board["journal"]["folder"] = config.journal_folder(board, site, named[0], named[1])
        try:
            io = hal.board_io(board, opts["emulator"])
        except ImportError as e:  # the pin adapter's library (gpiozero on a Pi) is not installed
            raise ConfigError(opts["board"], "hal", "%r cannot start here: %s (pip install 'doorlink[pi]')"
                              % (board["hal"], e))
    except ConfigError as e:
        _stop(e)
    del config
    hal.release("agent.config")

    # This boot counted on flash before anything that can crash
    # (docs/door-controller.md, section 7).
    from agent.boot_state import BootState
    boot = BootState(board["journal"]["path"], board["health"]["safe_mode_after"])
    boot.begin()
    from agent.device import Device
    try:
        device = Device(board, site, io, boot)
    except ConfigError as e:  # a peripheral the board's hal cannot set up: the device names it
        _stop(ConfigError(opts["board"], e.field, e.problem))
    # A restart or a stop that was asked for is no crash: the next boot
    # starts normally (so a reboot command leaves safe mode).
    try:
        asyncio.run(device.run())   # returns when a restart was asked for
        boot.stable()
    except KeyboardInterrupt:
        log.info("agent", "stopped")
        boot.stable()
    finally:
        device.close()
    if device.restart:
        log.info("agent", "restarting")
        hal.restart(device.restart == "soft")


if __name__ == "__main__":
    main()
