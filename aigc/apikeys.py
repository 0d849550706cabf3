"""API keys: `aigc_<prefix>_<secret>`, 256 random bits of secret. Only a key's SHA-256 is
stored; its short prefix identifies it in lists, logs and on the jobs it submitted."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

SCHEME = "aigc"
SECRET_BYTES = 32  # 256 bits
PREFIX_HEX_CHARS = 8
KEY_PATTERN = re.compile(rf"^{SCHEME}_([0-9a-f]{{{PREFIX_HEX_CHARS}}})_[A-Za-z0-9_-]{{43}}$")


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    prefix: str  # e.g. "aigc_1f2e3d4c": stored, shown in lists
    sha256: str


def new_key() -> NewKey:
    prefix = f"{SCHEME}_{secrets.token_hex(PREFIX_HEX_CHARS // 2)}"
    key = f"{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    return NewKey(key=key, prefix=prefix, sha256=key_sha256(key))


def key_sha256(key: str) -> str:
    # Keys carry 256 random bits: a plain hash is enough, no slow password hash needed.
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_key(value: str) -> bool:
    """A well-formed key (whether it exists is for the database to say)."""
    return KEY_PATTERN.match(value) is not None
