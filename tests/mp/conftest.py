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
