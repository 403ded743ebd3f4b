# The ESP32's Wi-Fi station, kept joined: a supervised task the device runs
# when the site names a network ("wifi": {"ssid", "password"}). A join has a
# deadline; failed joins are retried with backoff and full jitter (the
# site's backoff_* settings, as the uplink's reconnects); a link lost is
# rejoined at once. The password goes to the firmware and nowhere else:
# no log line, error or status holds it.
#
# The time comes from the cloud where it can (agent/clock.py); NTP is asked
# (agent/hal/ntp.py) only when the clock is not plausible (an ESP32's RTC
# starts at 2000 after power-up) or nobody has set it for NTP_STALE_S, and
# after a failure no sooner than its backoff allows: a name lookup blocks.
# The NTP client is loaded with this module, at start-up: an import needs a
# contiguous block, which a heap that has run a while may no longer have.
import asyncio

from agent import clock, log, records
from agent.backoff import Backoff
from agent.hal import ntp, ticks_add, ticks_diff, ticks_ms

JOIN_DEADLINE_S = 20   # an ESP32 joins a WPA2 network in 2-5 s; a slow DHCP server takes more
POLL_MS = 100          # how often a join in progress is looked at
WATCH_MS = 1000        # how often a joined link is looked at
NTP_STALE_S = 6 * 3600  # an ESP32's crystal drifts well under a second in that time
NTP_RETRY_S = (60, 3600)  # first and largest wait after a failed NTP query
NTP_SERVER = ("pool.ntp.org", 123)

# network.STAT_* values of the ESP32 firmware -> why a join failed
_FAILED = {200: "the access point stopped answering", 201: "no access point with that name",
           202: "wrong password", 203: "association refused", 204: "handshake timed out"}
_GOT_IP = 1010


class Wifi:
    __slots__ = ("ssid", "_password", "deadline_ms", "backoff", "joined", "ntp_server", "_ntp_fails",
                 "_ntp_after")

    def __init__(self, wifi, backoff_base_s=1, backoff_cap_s=30, backoff_reset_s=30,
                 deadline_s=JOIN_DEADLINE_S, ntp_server=NTP_SERVER):
        self.ssid = wifi["ssid"]
        self._password = wifi["password"]
        self.deadline_ms = int(deadline_s * 1000)
        self.backoff = Backoff(backoff_base_s, backoff_cap_s, backoff_reset_s)
        self.joined = False
        self.ntp_server = ntp_server
        self._ntp_fails = 0
        self._ntp_after = ticks_ms()

    async def run(self):
        import network
        wlan = network.WLAN(network.STA_IF)
        wlan.active(True)
        try:
            while True:
                failure = await self._join(wlan)
                if failure is not None:
                    log.count("wifi_join_failures")
                    delay = self.backoff.next_delay()
                    log.warn("wifi", "joining %r failed: %s; next try in %.1f s" % (self.ssid, failure, delay))
                    await asyncio.sleep(delay)
                    continue
                self.joined = True
                self.backoff.up()
                log.info("wifi", "joined %r as %s" % (self.ssid, wlan.ifconfig()[0]))
                while wlan.isconnected():
                    await self._sync_time()
                    await asyncio.sleep_ms(WATCH_MS)
                self.joined = False
                self.backoff.down()
                log.count("wifi_lost")
                log.warn("wifi", "link to %r lost; rejoining" % self.ssid)
        finally:
            self.joined = False

    async def _join(self, wlan):
        """One join within the deadline -> None, or why it failed."""
        # The firmware refuses connect() while a join is under way or up
        # ("Wifi Internal Error"): start from idle.
        _drop(wlan)
        try:
            wlan.connect(self.ssid, self._password)
        except OSError as e:
            return "the radio refused (%s)" % e
        start = ticks_ms()
        while ticks_diff(ticks_ms(), start) < self.deadline_ms:
            status = wlan.status()
            if status == _GOT_IP:
                return None
            if status in _FAILED:
                _drop(wlan)
                return _FAILED[status]
            await asyncio.sleep_ms(POLL_MS)
        _drop(wlan)
        return "no link within %s s" % (self.deadline_ms / 1000)

    async def _sync_time(self):
        if ticks_diff(ticks_ms(), self._ntp_after) < 0:
            return
        age = clock.set_age_s()
        if records.plausible_time(clock.now()) and age is not None and age < NTP_STALE_S:
            return
        host, port = self.ntp_server
        try:
            drift = clock.set_from_cloud(await ntp.query(host, port), "ntp")
        except (OSError, ValueError) as e:
            log.count("ntp_failures")
            delay = min(NTP_RETRY_S[0] << min(self._ntp_fails, 6), NTP_RETRY_S[1])
            self._ntp_fails += 1
            self._ntp_after = ticks_add(ticks_ms(), delay * 1000)
            log.warn("wifi", "NTP (%s) gave no time: %s; next try in %d s" % (host, e, delay))
            return
        self._ntp_fails = 0
        log.info("wifi", "clock set from NTP (%+d s)" % drift)


def _drop(wlan):
    try:
        wlan.disconnect()
    except OSError:
        pass   # not joined: nothing to drop
