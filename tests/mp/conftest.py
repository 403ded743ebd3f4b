# Host services only MicroPython tests in this folder ask for.
import socket
import threading

import pytest


@pytest.fixture
def silent_port():
    """A port on 127.0.0.1 that accepts connections and never says a word:
    a server that hangs mid-handshake, or a blackholed route behind a proxy
    that completed the TCP handshake."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

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
def fuzz_inputs(tmp_path):
    """Hostile codec inputs made on the host (tests/fuzz_corpus.py: a
    seeded corpus, and the worst cases within the limits), as files of JSON
    lines: {"corpus": path, "worst": path, "seed": n}."""
    import fuzz_corpus  # tests/fuzz_corpus.py: only the fuzz test pays for importing every codec
    return fuzz_corpus.write_for_micropython(tmp_path)
