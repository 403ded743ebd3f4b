"""`doorlink journal PATH`: what is in a device's journal, as JSON lines.

Reads the folder the agent writes (from a Pi, a copied ESP32 flash, or a
test) or a LittleFS flash image, checks every record's CRC with the agent's
own framing code and decodes payloads with cbor2, independently of the
agent's CBOR codec.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cbor2
import littlefs

from agent.journal import CURSOR, SEG_SUFFIX, unframe
from host_tools.cli_common import CliError, Parents


def read_cursor(folder: str | Path) -> int | None:
    try:
        data = (Path(folder) / CURSOR).read_bytes()
    except OSError:
        return 0
    payload, _ = unframe(data, 0)
    return cbor2.loads(payload) if payload is not None else None


def entries(folder: str | Path) -> Iterator[dict]:
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


def pending_ids(folder: str | Path) -> list[int]:
    return [e["id"] for e in entries(folder) if e.get("crc") == "ok" and not e["acked"]]


def extract_image(image: str | Path, dest: str | Path, block_size: int = 4096, inside: str | None = None) -> str:
    """Copy the journal folder out of a LittleFS flash image (read from a
    board, or the emulated board's) into `dest`; returns the folder used."""
    data = bytearray(Path(image).read_bytes())
    if len(data) % block_size:
        raise ValueError(f"image size {len(data)} is not a multiple of the block size {block_size}")
    fs = littlefs.LittleFS(block_size=block_size, block_count=len(data) // block_size, mount=False)
    fs.context.buffer = data
    try:
        fs.mount()
    except Exception as e:  # noqa: BLE001 - littlefs raises its own error types
        raise ValueError(f"no LittleFS file system in {image} (block size {block_size}?): {e}") from None
    found = [root for root, _, files in fs.walk("/") if any(f.endswith(SEG_SUFFIX) or f == CURSOR for f in files)]
    if inside is None:
        if len(found) != 1:
            raise ValueError(f"the image holds {len(found) or 'no'} journal folders: {', '.join(found) or '-'}; "
                             "choose one with --inside")
        inside = found[0]
    for name in fs.listdir(inside):
        with fs.open(inside.rstrip("/") + "/" + name, "rb") as src:
            (Path(dest) / name).write_bytes(src.read())
    return inside


def add_parser(sub: argparse._SubParsersAction, parents: Parents) -> argparse.ArgumentParser:
    p = sub.add_parser("journal", help="decode a device journal (folder or LittleFS image) to JSON lines")
    p.add_argument("path", help="the journal folder (one per device id), or a LittleFS flash image")
    p.add_argument("--pending", action="store_true", help="only records not yet acknowledged")
    p.add_argument("--block-size", type=int, default=4096, help="LittleFS block size of an image")
    p.add_argument("--inside", help="journal folder inside an image (default: the only one)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.path
        if os.path.isfile(args.path):
            try:
                inside = extract_image(args.path, tmp, args.block_size, args.inside)
            except (ValueError, OSError) as e:
                raise CliError(str(e), "give a journal folder, or a LittleFS image (--block-size, --inside)") \
                    from None
            folder = tmp
            print(json.dumps({"image": args.path, "folder": inside}))
        elif not os.path.isdir(args.path):
            raise CliError(f"{args.path} is neither a journal folder nor a flash image",
                           "journal folders are <board journal path>/<device id>")
        print(json.dumps({"cursor": read_cursor(folder)}))
        for e in entries(folder):
            if args.pending and (e.get("crc") != "ok" or e["acked"]):
                continue
            print(json.dumps(e, default=repr))
    return 0
