# The fingerprint driver under the MicroPython unix port, over the pty of
# the host's emulated module (tests/host/test_fingerprint_mpy.py drives the
# simulated finger). Prints "@@enrol" when it wants a new finger and
# "@@arm FAULT" when it wants a line fault, waits for a line on stdin each
# time, and ends with one JSON result line "@@result {...}".
#   micropython tests/mp/fingerprint_check.py /dev/pts/N
import asyncio
import json
import sys

from agent import log
from agent.hal.serial_posix import open_port
from agent.peripherals.fingerprint import Fingerprint, FingerprintError


async def main(path):
    port = open_port(path, 57600)
    fp = Fingerprint(port, timeout=1.0)
    out = {}
    await fp.verify_password()
    out["params"] = await fp.read_sys_params()
    out["identify"] = await fp.identify()
    print("@@enrol")
    sys.stdin.readline()
    out["enrolled"] = await fp.enrol(30, wait_s=10, poll_s=0.05)
    out["after_enrol"] = await fp.identify()
    out["templates"] = await fp.template_count()
    await fp.delete(30)
    out["after_delete"] = await fp.identify()
    try:
        await fp.enrol(5000, wait_s=1)
    except FingerprintError as e:
        out["bad_page"] = [e.code, str(e)]
    # Line faults, armed on the emulator by the host between our steps.
    faults = {}
    for name in ("noise", "corrupt", "silent", "silent_long", "reject"):
        print("@@arm " + name)
        sys.stdin.readline()
        try:
            faults[name] = ["ok", await fp.template_count()]
        except FingerprintError as e:
            faults[name] = ["error", e.code, str(e)]
    faults["after"] = await fp.template_count()
    out["faults"] = faults
    out["counters"] = log.counters
    port.close()
    print("@@result " + json.dumps(out))


asyncio.run(main(sys.argv[1]))
