"""Time-sortable ids (UUIDv7, RFC 9562): newest-first listing and cursors sort by id alone."""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7; ids made in one process are strictly increasing, even within a millisecond."""
    return uuid7_many(1)[0]


def uuid7_many(n: int) -> list[uuid.UUID]:
    """`n` increasing UUIDv7s at once (a batch's jobs): one lock and one read of the random
    source for all of them."""
    global _last_ms, _counter
    stamps: list[tuple[int, int]] = []
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        for _ in range(n):
            if now_ms > _last_ms:
                _last_ms = now_ms
                _counter = int.from_bytes(os.urandom(2), "big") & 0x1FF  # room to count up
            else:
                _counter += 1
                if _counter > 0xFFF:  # 12-bit counter exhausted: borrow the next millisecond
                    _last_ms += 1
                    _counter = 0
            stamps.append((_last_ms, _counter))
    random = os.urandom(8 * n)
    mask = (1 << 62) - 1
    return [
        uuid.UUID(
            int=(ms << 80)
            | (0x7 << 76)
            | (counter << 64)
            | (0b10 << 62)
            | (int.from_bytes(random[8 * i : 8 * i + 8], "big") & mask)
        )
        for i, (ms, counter) in enumerate(stamps)
    ]
