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


def cursor_entry(folder: str | Path) -> dict:
    """The cursor as the first JSON line: {"cursor": id} (0 when there is
    none yet), with "pending_notice": [count, first, last] while an
    eviction's notice is not journaled and "unacknowledged_notices" (the
    range of the notices journaled that the cloud has not acknowledged,
    and the first and last notice's ids: agent/journal.py), or {"cursor":
    None, "error": ...} when the file is unreadable (the agent then resends
    everything)."""
    path = Path(folder) / CURSOR
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {"cursor": 0}
    except OSError as e:
        return {"cursor": None, "error": f"cannot read {CURSOR}: {e.strerror or e}"}
    payload, _ = unframe(data, 0)
    if payload is None:
        return {"cursor": None, "error": f"{CURSOR}: bad frame or CRC ({len(data)} bytes)"}
    try:
        value = cbor2.loads(payload)
    except Exception as e:  # noqa: BLE001 - cbor2 raises several types for bad input
        return {"cursor": None, "error": f"{CURSOR}: CRC ok but not CBOR ({e})"}
    if _count(value):
        return {"cursor": value}
    if isinstance(value, list) and len(value) in (4, 9) and all(_count(v) for v in value):
        entry = {"cursor": value[0]}
        if value[1]:
            entry["pending_notice"] = value[1:4]
        if len(value) == 9:
            c, first, last, oldest, newest = value[4:]
            entry["unacknowledged_notices"] = {"count": c, "first_id": first, "last_id": last,
                                               "notice_ids": [oldest, newest]}
        return entry
    return {"cursor": None, "error": f"{CURSOR}: CRC ok but holds {value!r:.80}, not an id"}


def _count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def read_cursor(folder: str | Path) -> int | None:
    """The acknowledged id (0 without a cursor), None when unreadable."""
    return cursor_entry(folder)["cursor"]


def _record(payload: bytes) -> tuple[list | None, str | None]:
    """The record [id, time, kind, name, value] in a payload whose CRC
    held, or (None, what is wrong with it)."""
    try:
        rec = cbor2.loads(payload)
    except Exception as e:  # noqa: BLE001 - cbor2 raises several types for bad input
        return None, f"not CBOR ({str(e)[:100]})"
    if not (isinstance(rec, list) and len(rec) == 5 and _count(rec[0]) and isinstance(rec[2], str)):
        return None, f"not a record ({type(rec).__name__} {str(rec)[:60]!r})"
    return rec, None


def device_folders(root: str | Path) -> list[str]:
    """Sub-folders of `root` that hold a journal (a journal root's devices)."""
    out = []
    for p in sorted(Path(root).iterdir()):
        if p.is_dir() and not p.name.endswith(SEG_SUFFIX) and any(
                (q.name.endswith(SEG_SUFFIX) or q.name == CURSOR) for q in p.iterdir()):
            out.append(p.name)
    return out


def entries(folder: str | Path) -> Iterator[dict]:
    """Yield one dict per record (and per stretch of torn/corrupt bytes,
    per record whose CRC holds but whose content does not, per segment
    that cannot be read)."""
    if not Path(folder).is_dir():
        return  # no journal yet: nothing in it
    cursor = read_cursor(folder) or 0
    for seg in sorted(p for p in Path(folder).iterdir() if p.name.endswith(SEG_SUFFIX)):
        try:
            data = seg.read_bytes()
        except OSError as e:
            yield {"segment": seg.name, "error": f"cannot read: {e.strerror or e}"}
            continue
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
            rec, error = _record(payload)
            if rec is None:
                yield {"segment": seg.name, "offset": pos, "crc": "ok", "error": error, "bytes": nxt - pos}
            else:
                rid, t, kind, name, value = rec
                yield {"id": rid, "time": t, "kind": kind, "name": name, "value": value,
                       "crc": "ok", "acked": rid <= cursor, "segment": seg.name, "offset": pos}
            pos = nxt
        if bad_from is not None:
            yield {"segment": seg.name, "offset": bad_from, "crc": "torn", "bytes": len(data) - bad_from}


def pending_ids(folder: str | Path) -> list[int]:
    return [e["id"] for e in entries(folder) if "id" in e and not e["acked"]]


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
        else:
            _check_folder(args.path)
        print(json.dumps(cursor_entry(folder)))
        for e in entries(folder):
            if args.pending and ("id" not in e or e["acked"]):
                continue
            print(json.dumps(e, default=repr))
    return 0


def _check_folder(path: str) -> None:
    """A folder that holds no journal is an error, not an empty journal:
    most often it is the journal root, with one folder per device."""
    names = os.listdir(path)
    if any(n.endswith(SEG_SUFFIX) or n == CURSOR for n in names):
        return
    devices = device_folders(path)
    if devices:
        raise CliError(f"{path} is a journal root, not a device's journal: it holds {', '.join(devices[:10])}"
                       + (" ..." if len(devices) > 10 else ""),
                       f"give one of them: doorlink journal {os.path.join(path, devices[0])}")
    if names:
        raise CliError(f"{path} holds no journal (no *{SEG_SUFFIX} segments, no {CURSOR})",
                       "journal folders are <board journal path>/<device id>")
