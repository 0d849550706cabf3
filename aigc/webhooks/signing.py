"""Signing the Standard Webhooks way (https://www.standardwebhooks.com): HMAC-SHA256 of
`{webhook-id}.{webhook-timestamp}.{body}` under the team's secret, sent base64-encoded as
`v1,<signature>` in `webhook-signature`; while a rotated-out secret is still valid the
message carries one signature per secret, separated by spaces. A receiver using the
`standardwebhooks` package (or Svix's) verifies it as it is."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # 256 random bits; the spec asks for 24 to 64
USER_AGENT = "aigc-jobs-webhooks/1"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` entry of webhook-signature."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(
    msg_id: str, timestamp: int, body: bytes, team_secrets: Sequence[str]
) -> dict[str, str]:
    """The headers of one message: id, timestamp (unix seconds) and a signature per
    secret."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            signature(secret, msg_id, timestamp, body) for secret in team_secrets
        ),
    }
