# Stand-in for MicroPython's `network` on an ESP32: one station interface
# and an access point the test controls (`air`). Keeps the firmware's rules
# that bite: connect() needs active(True) first; connect() again while
# connecting or connected fails ("Wifi Internal Error") until disconnect();
# connect() returns at once and the link comes up (or fails, with the
# firmware's status code) a moment later. `calls` records what the agent
# asked, never the password (only whether it was right).
import time

STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_BEACON_TIMEOUT = 200
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204

# The access point within reach: its name and passphrase, whether it is on
# the air, and how long joining it takes.
air = {"ssid": "site-ap", "password": "correct-horse", "up": True, "join_ms": 30}
calls = []
_IP = ("192.168.4.20", "255.255.255.0", "192.168.4.1", "192.168.4.1")
_NONE = ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
_wlans = {}


def ap_down():
    """The access point vanishes (power cut, out of range): a joined
    station loses its link."""
    air["up"] = False
    sta = _wlans.get(STA_IF)
    if sta is not None and sta._status in (STAT_GOT_IP, STAT_CONNECTING):
        sta._status = STAT_BEACON_TIMEOUT if sta._status == STAT_GOT_IP else STAT_NO_AP_FOUND


def ap_up():
    air["up"] = True


class WLAN:
    def __new__(cls, interface=STA_IF):
        if interface != STA_IF:
            raise ValueError("only the station interface is modelled")
        wlan = _wlans.get(interface)
        if wlan is None:
            wlan = _wlans[interface] = object.__new__(cls)
            wlan._active = False
            wlan._status = STAT_IDLE
            wlan._since = 0
            wlan._ok = False
        return wlan

    def __init__(self, interface=STA_IF):
        pass

    def active(self, on=None):
        if on is None:
            return self._active
        calls.append(("active", bool(on)))
        self._active = bool(on)
        if not on:
            self._status = STAT_IDLE
        return None

    def connect(self, ssid, key=""):
        if not self._active:
            raise OSError("Wifi Not Started")
        if self._status in (STAT_CONNECTING, STAT_GOT_IP):
            raise OSError("Wifi Internal Error")
        self._ok = ssid == air["ssid"] and key == air["password"]
        calls.append(("connect", ssid, self._ok))
        self._status = STAT_CONNECTING
        self._since = time.ticks_ms()

    def disconnect(self):
        calls.append(("disconnect",))
        self._status = STAT_IDLE

    def status(self, param=None):
        if param is not None:
            return -60 if self._status == STAT_GOT_IP else 0   # "rssi"
        if self._status == STAT_CONNECTING and time.ticks_diff(time.ticks_ms(), self._since) >= air["join_ms"]:
            if not air["up"]:
                self._status = STAT_NO_AP_FOUND
            else:
                self._status = STAT_GOT_IP if self._ok else STAT_WRONG_PASSWORD
        return self._status

    def isconnected(self):
        return self.status() == STAT_GOT_IP

    def ifconfig(self, config=None):
        return _IP if self.isconnected() else _NONE

    def config(self, *args, **kw):
        if kw:
            return None
        if args == ("mac",):
            return b"\x24\x0a\xc4\x00\x00\x01"
        raise ValueError("unknown config param")
