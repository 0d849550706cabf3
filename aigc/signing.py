"""Signed, expiring artifact URLs: a browser or a CMS can fetch an artifact's bytes without
an API key, for a while, and only that artifact.

A URL carries `expires` (unix seconds) and `signature`, the HMAC-SHA256 of the artifact id
and that expiry under the deployment's secret (`AIGC_URL_SIGNING_KEY`). Changing the id,
the expiry or the signature breaks it; checking compares in constant time.

Every API process that signs must hold the same secret. Production sets it; on one machine
(`aigc up`, the tests) it is generated on first start into `$AIGC_VAR_DIR/url-signing-key`
(mode 0600) and read from there by every process after.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aigc.errors import Forbidden
from aigc.private_file import create_private, read_private
from aigc.settings import Settings

KEY_FILE = "url-signing-key"
KEY_BYTES = 32  # 256 random bits, as hex in the key file
# The signed message names what it is for, so a signature can never be replayed as another
# kind of token the same secret might sign later.
PURPOSE = b"aigc-artifact-url-v1"
SIGNATURE_PATTERN = re.compile(r"[0-9a-f]{64}")
EXPIRES_PATTERN = re.compile(r"[0-9]{1,12}")  # unix seconds, far beyond any real expiry


def load_or_create_key(var_dir: Path, file_name: str = KEY_FILE) -> str:
    """The key kept in `var_dir`/`file_name`, made on first use. Creation is atomic (a
    complete file is linked into place), so processes starting together all end up with the
    same key. Each purpose has its own file: a leaked URL key must not forge labels."""
    path = var_dir / file_name
    if not path.exists():
        # Where another process made it first, theirs is the key.
        create_private(path, secrets.token_hex(KEY_BYTES) + "\n")
    return _read_key(path)


def _read_key(path: Path) -> str:
    key = read_private(path)
    if not key:
        raise RuntimeError(f"{path} is empty: delete it to have a new key made")
    return key


def url_signing_key(settings: Settings) -> str:
    """AIGC_URL_SIGNING_KEY where set, else the key in AIGC_VAR_DIR (made on first use).
    Raises RuntimeError, saying what to do, when neither can be had."""
    if settings.url_signing_key is not None:
        return settings.url_signing_key.get_secret_value()
    try:
        return load_or_create_key(settings.var_dir)
    except OSError as exc:
        raise RuntimeError(
            f"no URL signing key: AIGC_URL_SIGNING_KEY is unset and {settings.var_dir / KEY_FILE} "
            f"cannot be read or created ({exc}); set AIGC_URL_SIGNING_KEY to a random secret "
            "shared by every API process (e.g. `openssl rand -hex 32`)"
        ) from exc


@dataclass(frozen=True)
class UrlSigner:
    """Signs and checks artifact URLs with one key and lifetime."""

    key: bytes
    ttl_s: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlSigner:
        return cls(url_signing_key(settings).encode(), settings.url_ttl_s)

    def signature(self, artifact_id: uuid.UUID, expires: int) -> str:
        message = b"\n".join((PURPOSE, str(artifact_id).encode(), str(expires).encode()))
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def query(self, artifact_id: uuid.UUID, now: float | None = None) -> str:
        """`expires=…&signature=…` for a URL valid for ttl_s from now."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        return f"expires={expires}&signature={self.signature(artifact_id, expires)}"

    def check(
        self,
        artifact_id: uuid.UUID,
        expires: str | None,
        signature: str | None,
        now: float | None = None,
    ) -> None:
        """Raises Forbidden unless `signature` signs this artifact and `expires`, and
        `expires` has not passed. Malformed values are refused the same way."""
        if (
            expires is None
            or signature is None
            or not EXPIRES_PATTERN.fullmatch(expires)
            or not SIGNATURE_PATTERN.fullmatch(signature)
        ):
            raise Forbidden("the signed URL is malformed: it needs `expires` and `signature`")
        if not hmac.compare_digest(self.signature(artifact_id, int(expires)), signature):
            raise Forbidden("the URL's signature is not valid for this artifact and expiry")
        if int(expires) < (now if now is not None else time.time()):
            raise Forbidden(
                "the signed URL has expired: read the job again for a fresh one, or "
                "download with an API key"
            )
