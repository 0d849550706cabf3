"""Secrets kept in files (the embedded stack's API key, the URL-signing key): readable by
their owner alone from the first byte, and written whole or not at all."""

from __future__ import annotations

import os
import secrets
from contextlib import suppress
from pathlib import Path


def create_private(path: Path, text: str) -> bool:
    """Create `path` (mode 0600) holding `text` unless it exists; True when this call made
    it. The file is written complete under a temporary name and linked into place, so
    processes starting together all end up reading the same one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        with suppress(FileExistsError):
            os.link(temporary, path)
            return True
        return False
    finally:
        temporary.unlink(missing_ok=True)


def read_private(path: Path) -> str | None:
    """The secret in `path` without surrounding whitespace; None when there is no such file
    (other read errors raise OSError)."""
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
