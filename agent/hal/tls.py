# Client TLS contexts for both runtimes: certificate and host name verified
# against ca_file. CPython takes the PEM file as it is (or the system's CAs
# when ca_file is None); MicroPython's mbedtls takes DER and has no system
# CA store, so there a ca_file is required.
import sys

from agent.errors import LinkClosed

# One context per CA file for the process's life: building one allocates
# the mbedtls context (about 3 KB, contiguous) and parses the CA chain. Made
# again at every reconnect, on a fragmented 192 KB heap it stopped fitting,
# and the device could never reconnect; made once, early, it always does.
_contexts = {}


def client_context(ca_file=None):
    ctx = _contexts.get(ca_file)
    if ctx is None:
        ctx = _contexts[ca_file] = _new_context(ca_file)
    return ctx


def _new_context(ca_file):
    if sys.implementation.name == "micropython":
        return _mpy_context(ca_file)
    import ssl
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise LinkClosed("cannot load ca_file %s: %s" % (ca_file, e))


def pem_certs(path):
    """The DER bytes of every certificate in a PEM file."""
    import binascii
    out, cur = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("-----BEGIN CERTIFICATE"):
                cur = []
            elif line.startswith("-----END CERTIFICATE") and cur is not None:
                out.append(binascii.a2b_base64("".join(cur)))
                cur = None
            elif cur is not None:
                cur.append(line)
    return out


def _mpy_context(ca_file):
    import ssl
    if not ca_file:
        raise LinkClosed("a ca_file is required for TLS on MicroPython (no system CA store)")
    try:
        certs = pem_certs(ca_file)
    except (OSError, ValueError) as e:
        raise LinkClosed("cannot read ca_file %s: %s" % (ca_file, e))
    if not certs:
        raise LinkClosed("ca_file %s holds no PEM certificate" % ca_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    for der in certs:
        ctx.load_verify_locations(cadata=der)
    return ctx
