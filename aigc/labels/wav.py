"""The label in a WAV: a RIFF `LIST` chunk of type `INFO` appended after the audio, with
`ICMT` (comment) = "AIGC " + the label's JSON and `ISFT` (software) = the producer. Players
skip chunks they do not play; the RIFF size is fixed to include it."""

from __future__ import annotations

import struct

from aigc.labels.label import Label, MalformedLabel

MARKER = b"AIGC "


class NotWav(ValueError):
    pass


def _chunks(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, id, end including the pad byte) of each top-level chunk."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise NotWav("not a WAV: the RIFF/WAVE header is missing")
    chunks = []
    offset = 12
    while offset + 8 <= len(data):
        (size,) = struct.unpack("<I", data[offset + 4 : offset + 8])
        end = offset + 8 + size + (size & 1)
        if offset + 8 + size > len(data):
            raise NotWav("a RIFF chunk runs past the end of the file")
        chunks.append((offset, data[offset : offset + 4], min(end, len(data))))
        offset = end
    return chunks


def _subchunks(body: bytes) -> dict[bytes, bytes]:
    """The INFO list's entries (id → value), from after the list type."""
    entries: dict[bytes, bytes] = {}
    offset = 4
    while offset + 8 <= len(body):
        (size,) = struct.unpack("<I", body[offset + 4 : offset + 8])
        entries[body[offset : offset + 4]] = body[offset + 8 : offset + 8 + size]
        offset += 8 + size + (size & 1)
    return entries


def _subchunk(kind: bytes, value: bytes) -> bytes:
    value += b"\0"  # INFO strings end with a NUL
    return kind + struct.pack("<I", len(value)) + value + b"\0" * (len(value) & 1)


def _label_chunks(data: bytes) -> list[tuple[int, int]]:
    return [
        (offset, end)
        for offset, kind, end in _chunks(data)
        if kind == b"LIST"
        and data[offset + 8 : offset + 12] == b"INFO"
        and _subchunks(data[offset + 8 : end]).get(b"ICMT", b"").startswith(MARKER)
    ]


def _with_riff_size(data: bytes) -> bytes:
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


def strip(data: bytes) -> bytes:
    """The WAV without its label chunks."""
    for offset, end in reversed(_label_chunks(data)):
        data = data[:offset] + data[end:]
    return _with_riff_size(data)


def write(data: bytes, label: Label) -> bytes:
    """`data` with `label` as its one label chunk (an earlier one is replaced)."""
    data = strip(data)
    pad = b"\0" * (len(data) & 1)  # chunks start on even offsets
    body = (
        b"INFO"
        + _subchunk(b"ICMT", MARKER + label.to_json())
        + _subchunk(b"ISFT", label.producer.encode())
    )
    chunk = b"LIST" + struct.pack("<I", len(body)) + body
    riff_size = struct.pack("<I", len(data) + len(pad) + len(chunk) - 8)
    # One copy of the audio (slices of a memoryview copy nothing): this runs on every one.
    return b"".join((b"RIFF", riff_size, memoryview(data)[8:], pad, chunk))


def read(data: bytes) -> Label | None:
    """The label, None where there is none; MalformedLabel where it is damaged."""
    found = _label_chunks(data)
    if not found:
        return None
    if len(found) > 1:
        raise MalformedLabel("the WAV holds more than one AIGC label")
    [(offset, end)] = found
    comment = _subchunks(data[offset + 8 : end])[b"ICMT"]
    return Label.from_json(comment[len(MARKER) :].rstrip(b"\0"))
