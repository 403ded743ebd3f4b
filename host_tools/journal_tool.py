# `doorlink journal PATH`: what is in a device's journal, as JSON lines.
# Reads the folder the agent writes (from a Pi, a copied ESP32 flash, or a
# test), checks every record's CRC with the agent's own framing code and
# decodes payloads with cbor2, independently of the agent's CBOR codec.
import json
import os
import sys
from pathlib import Path

import cbor2

from agent.journal import CURSOR, SEG_SUFFIX, unframe


def read_cursor(folder):
    try:
        data = (Path(folder) / CURSOR).read_bytes()
    except OSError:
        return 0
    payload, _ = unframe(data, 0)
    return cbor2.loads(payload) if payload is not None else None


def entries(folder):
    """Yield one dict per record (and per stretch of torn/corrupt bytes)."""
    if not Path(folder).is_dir():
        return  # no journal yet: nothing in it
    cursor = read_cursor(folder) or 0
    for seg in sorted(p for p in Path(folder).iterdir() if p.name.endswith(SEG_SUFFIX)):
        data = seg.read_bytes()
        pos, bad_from = 0, None
        while pos < len(data):
            payload, nxt = unframe(data, pos)
            if payload is None:
                bad_from = pos if bad_from is None else bad_from
                pos = nxt
                continue
            if bad_from is not None:
                yield {"segment": seg.name, "offset": bad_from, "crc": "bad", "bytes": pos - bad_from}
                bad_from = None
            rid, t, kind, name, value = cbor2.loads(payload)
            yield {"id": rid, "time": t, "kind": kind, "name": name, "value": value,
                   "crc": "ok", "acked": rid <= cursor, "segment": seg.name, "offset": pos}
            pos = nxt
        if bad_from is not None:
            yield {"segment": seg.name, "offset": bad_from, "crc": "torn", "bytes": len(data) - bad_from}


def pending_ids(folder):
    return [e["id"] for e in entries(folder) if e.get("crc") == "ok" and not e["acked"]]


def add_parser(sub):
    p = sub.add_parser("journal", help="decode a device journal folder to JSON lines")
    p.add_argument("path", help="the journal folder (one per device id)")
    p.add_argument("--pending", action="store_true", help="only records not yet acknowledged")
    return p


def main(args):
    if not os.path.isdir(args.path):
        print("error: %s is not a journal folder" % args.path, file=sys.stderr)
        return 2
    print(json.dumps({"cursor": read_cursor(args.path)}))
    for e in entries(args.path):
        if args.pending and (e.get("crc") != "ok" or e["acked"]):
            continue
        print(json.dumps(e, default=repr))
    return 0
