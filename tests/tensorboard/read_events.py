#!/usr/bin/python3
"""Reads TensorBoard event files back, independently of yolotrain's writer: TFRecord framing checked with this
file's own CRC32C, Event messages parsed by Debian's python3-protobuf from src/io/tfevents.proto compiled by protoc.

    read_events.py FILE...   ->  JSON on stdout: [{"file": path, "file_version": str, "wall_time": float,
                                  "scalars": [{"tag", "step", "value", "wall_time"}, ...]}, ...]

Exits 1 with a message naming the file and the byte offset when a record is broken: a CRC that does not match,
a record cut short, a first record that is not the file_version, or an event that is not one scalar summary."""
import importlib
import json
import os
import struct
import subprocess
import sys
import tempfile

SCHEMA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "io", "tfevents.proto")


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def load_schema(tmp):
    subprocess.run(["protoc", "--python_out=" + tmp, "-I" + os.path.dirname(SCHEMA), SCHEMA], check=True)
    sys.path.insert(0, tmp)
    return importlib.import_module("tfevents_pb2")


def records(path):
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        if len(data) - at < 12:
            raise ValueError("%s: byte %d: a record header cut short" % (path, at))
        head = data[at:at + 8]
        (length,) = struct.unpack("<Q", head)
        (head_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if head_crc != masked(head):
            raise ValueError("%s: byte %d: the length's CRC does not match" % (path, at))
        end = at + 12 + length
        if end + 4 > len(data):
            raise ValueError("%s: byte %d: a record of %d bytes cut short" % (path, at, length))
        body = data[at + 12:end]
        (body_crc,) = struct.unpack("<I", data[end:end + 4])
        if body_crc != masked(body):
            raise ValueError("%s: byte %d: the data's CRC does not match" % (path, at))
        yield at, body
        at = end + 4


def read(path, pb):
    out = {"file": path, "scalars": []}
    for i, (at, body) in enumerate(records(path)):
        ev = pb.Event()
        ev.ParseFromString(body)
        what = ev.WhichOneof("what")
        if i == 0:
            if what != "file_version":
                raise ValueError("%s: the first record is a %s, not the file_version" % (path, what))
            out["file_version"] = ev.file_version
            out["wall_time"] = ev.wall_time
            continue
        if what != "summary" or len(ev.summary.value) != 1:
            raise ValueError("%s: byte %d: not one scalar summary (%s)" % (path, at, what))
        v = ev.summary.value[0]
        if v.WhichOneof("value") != "simple_value":
            raise ValueError("%s: byte %d: %s has no simple_value" % (path, at, v.tag))
        out["scalars"].append({"tag": v.tag, "step": ev.step, "value": v.simple_value, "wall_time": ev.wall_time})
    if "file_version" not in out:
        raise ValueError("%s: no records" % path)
    return out


def main(paths):
    with tempfile.TemporaryDirectory() as tmp:
        pb = load_schema(tmp)
        try:
            result = [read(p, pb) for p in paths]
        except (OSError, ValueError) as e:
            print(e, file=sys.stderr)
            return 1
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
