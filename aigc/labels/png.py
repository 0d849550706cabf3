"""The label in a PNG: one `iTXt` chunk, keyword "AIGC", uncompressed UTF-8 JSON, inserted
just before IEND. The image data chunks are not touched, so pixels stay identical and
nothing is re-encoded."""

from __future__ import annotations

import struct
import zlib

from aigc.labels.label import Label, MalformedLabel

SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEYWORD = b"AIGC"
# keyword, NUL, compression flag 0 and method 0 (uncompressed), empty language tag and
# translated keyword, each NUL-terminated.
ITXT_PREFIX = KEYWORD + b"\x00\x00\x00\x00\x00"


class NotPng(ValueError):
    pass


def _chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, type, end) of each chunk; NotPng where the structure is broken."""
    if not data.startswith(SIGNATURE):
        raise NotPng("not a PNG: the signature is missing")
    chunks = []
    offset = len(SIGNATURE)
    while offset < len(data):
        if offset + 12 > len(data):
            raise NotPng("a PNG chunk is cut short")
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        end = offset + 12 + length
        if end > len(data):
            raise NotPng("a PNG chunk runs past the end of the file")
        kind = data[offset + 4 : offset + 8]
        chunks.append((offset, kind, end))
        if kind == b"IEND":
            return chunks
        offset = end
    raise NotPng("the PNG has no IEND chunk")


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _label_chunks(data: bytes) -> list[tuple[int, int]]:
    return [
        (offset, end)
        for offset, kind, end in _chunks(data)
        if kind == b"iTXt" and data[offset + 8 : offset + 8 + len(KEYWORD) + 1] == KEYWORD + b"\0"
    ]


def strip(data: bytes) -> bytes:
    """The PNG without its label chunks."""
    for offset, end in reversed(_label_chunks(data)):
        data = data[:offset] + data[end:]
    return data


def write(data: bytes, label: Label) -> bytes:
    """`data` with `label` as its one label chunk (an earlier one is replaced)."""
    data = strip(data)
    iend, _, _ = _chunks(data)[-1]
    # One copy of the image (slices of a memoryview copy nothing): this runs on every one.
    view = memoryview(data)
    return b"".join((view[:iend], _chunk(b"iTXt", ITXT_PREFIX + label.to_json()), view[iend:]))


def read(data: bytes) -> Label | None:
    """The label, None where there is none; MalformedLabel where the chunk is damaged."""
    found = _label_chunks(data)
    if not found:
        return None
    if len(found) > 1:
        raise MalformedLabel("the PNG holds more than one AIGC label")
    [(offset, end)] = found
    body = data[offset + 8 : end - 4]
    (crc,) = struct.unpack(">I", data[end - 4 : end])
    if zlib.crc32(b"iTXt" + body) != crc:
        raise MalformedLabel("the label chunk's CRC does not match: it was altered")
    if not body.startswith(ITXT_PREFIX):
        raise MalformedLabel("the label chunk is compressed or has a language tag")
    return Label.from_json(body[len(ITXT_PREFIX) :])
