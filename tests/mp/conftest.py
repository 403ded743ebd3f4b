# Host services only MicroPython tests in this folder ask for.
import contextlib
import socket
import threading

import pytest


@contextlib.contextmanager
def _loopback_server(on_accept):
    """A server on 127.0.0.1 (its port) handing each connection to
    on_accept(conn) in a thread; stopped, and every connection closed, at
    the end."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            on_accept(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never says a word:
    a server that hangs mid-handshake, or a blackholed route behind a proxy
    that completed the TCP handshake."""
    with _loopback_server(lambda conn: None) as port:
        yield port


@pytest.fixture
def fuzz_inputs(tmp_path):
    """Hostile codec inputs made on the host (tests/fuzz_corpus.py: a
    seeded corpus, and the worst cases within the limits), as files of JSON
    lines: {"corpus": path, "worst": path, "seed": n}."""
    import fuzz_corpus  # tests/fuzz_corpus.py: only the fuzz test pays for importing every codec
    return fuzz_corpus.write_for_micropython(tmp_path)


@pytest.fixture
async def slow_port(bench):
    """A port on 127.0.0.1 forwarding to the bench at 600 bytes/s in small
    slices, so a TLS record arrives in pieces, as one larger than a TCP
    segment does over a real network (loopback hands it over whole)."""
    from host_tools.chaos import FaultProxy
    proxy = await FaultProxy("127.0.0.1", bench.port).start()
    proxy.throttle(600)       # 30-byte slices: every record in pieces
    yield proxy.port
    await proxy.stop()


@pytest.fixture
def garbage_port():
    """A port on 127.0.0.1 whose server answers anything with a line of
    plain text and hangs up: not TLS, not HTTP a client expects."""
    def answer(conn):
        conn.sendall(b"SSH-2.0-not-what-you-expected\r\n")
        conn.close()
    with _loopback_server(answer) as port:
        yield port


NTP_TIME = 1767225600   # what the ntp_server fixture says it is: 2026-01-01T00:00:00Z


@pytest.fixture
def ntp_server():
    """An SNTP server on 127.0.0.1 answering every request with NTP_TIME
    (as RFC 4330 says: server mode, stratum 2, the request's transmit stamp
    echoed), and a UDP port beside it that never answers (a blackholed
    server): {"port", "silent", "time"}."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(0.1)
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def answer():
        while not stop.is_set():
            try:
                req, addr = server.recvfrom(64)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(req) < 48:
                continue
            rep = bytearray(48)
            rep[0], rep[1] = 0x24, 2
            rep[24:32] = req[40:48]
            rep[40:44] = (NTP_TIME + 2208988800).to_bytes(4, "big")
            server.sendto(rep, addr)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield {"port": server.getsockname()[1], "silent": silent.getsockname()[1], "time": NTP_TIME}
    finally:
        stop.set()
        thread.join(2)
        server.close()
        silent.close()


@pytest.fixture
def wiegand_wire():
    """The wire bits of every card and key tests/door_scenarios.py sends,
    {"card NUMBER NBITS": bits, "key K": bits}, from the emulator's encoder
    (host_tools/emulator.py): MicroPython has none of its own, and one
    encoder is enough."""
    import door_scenarios as ds  # tests/door_scenarios.py

    from host_tools.emulator import wiegand_card, wiegand_key
    wire = {"card %d %d" % c: wiegand_card(*c) for c in ds.CARDS}
    wire.update({"key " + k: wiegand_key(k) for k in ds.KEYS})
    return wire
