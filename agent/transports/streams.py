# Opening a TCP stream, TLS or not, under the caller's deadline: shared by
# the WebSocket connection and the HTTP client, so both verify certificates
# and word their failures the same way.

from agent.errors import LinkClosed
from agent.hal import open_connection


async def open_stream(host, port, tls, ca_file, where):
    """(reader, writer) to host:port; LinkClosed saying why otherwise. The
    caller's wait_for bounds it (DNS, TCP and, on CPython, TLS)."""
    ctx = None
    if tls:
        # Loaded only for wss:// and https:// (RAM: the TLS helpers are not small).
        from agent.hal.tls import client_context
        ctx = client_context(ca_file)
    try:
        return await open_connection(host, port, ctx)
    except (OSError, ValueError) as e:
        # mbedtls reports a refused certificate as ValueError.
        raise LinkClosed("connect to %s failed: %s" % (where, describe(e)))


def prepare_tls(url, ca_file):
    """Make a wss:// or https:// URL's TLS context now, at start, while the
    heap is whole (agent.hal.tls keeps it for the process's life). A CA
    file that cannot be used is not an error here: every connect says so."""
    if url.startswith("wss://") or url.startswith("https://"):
        from agent.hal.tls import client_context
        try:
            client_context(ca_file)
        except LinkClosed:
            pass


def describe(e):
    return str(e).strip() or e.__class__.__name__
