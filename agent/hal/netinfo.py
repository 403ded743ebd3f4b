# The device's own IP address, best effort, for the management channel's
# app/state: an ESP32 asks its Wi-Fi interface; elsewhere the address the
# kernel would send from towards `host` (a UDP "connect" sends nothing; a
# name is not resolved - DNS would block the event loop - so the default
# route's address stands in for it).
# The unix port's sockets have no getsockname: "" (unknown) there.
import sys


def local_ip(host):
    """The IP address this device reaches `host` from, or "" if unknown."""
    try:
        if sys.platform == "esp32":
            import network
            wlan = network.WLAN(network.STA_IF)
            return wlan.ifconfig()[0] if wlan.isconnected() else ""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if not hasattr(s, "getsockname"):
                return ""
            s.connect((host if _ipv4(host) else "192.0.2.1", 9))
            return s.getsockname()[0]
        finally:
            s.close()
    except Exception:  # noqa: BLE001 - best effort: no route, no interface, a name that does not resolve
        return ""


def _ipv4(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts)
