"""Presigned S3 GET URLs (AWS Signature Version 4, query form), made in microseconds.

botocore's generate_presigned_url resolves the endpoint and runs its event hooks on every
call: about 1.5 ms here, which a page of 1000 jobs pays 1000 times. The signature itself is
a few HMACs. botocore still decides the address once (path or virtual-host style, the
region's host), from one URL it presigns at startup; this signs every URL after it.
"""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from datetime import UTC, datetime
from typing import Protocol

ALGORITHM = "AWS4-HMAC-SHA256"
# The object's bytes are not known to the signer of a GET: S3's marker for that.
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# What SigV4 leaves unescaped (RFC 3986 unreserved); paths keep their slashes too.
UNRESERVED = "-_.~"


class FrozenCredentials(Protocol):
    access_key: str
    secret_key: str
    token: str | None


class CredentialSource(Protocol):
    """botocore's Credentials: static keys, or ones it refreshes (an instance role)."""

    def get_frozen_credentials(self) -> FrozenCredentials: ...


def _quote(value: str, safe: str = UNRESERVED) -> str:
    return urllib.parse.quote(value, safe=safe)


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class QueryPresigner:
    """Presigned GETs of objects under `base_url` (the bucket's URL, ending in `/`, as
    botocore addresses it), signed for `region` with the credentials of `source`."""

    def __init__(self, base_url: str, region: str, source: CredentialSource) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.base_path = parts.path
        self.region = region
        self.source = source

    def url(
        self, name: str, *, ttl_s: int, params: dict[str, str], now: datetime | None = None
    ) -> str:
        """A URL that GETs object `name` for ttl_s seconds from `now`; `params` are the
        response overrides (`response-content-type`, …), signed with it."""
        when = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        day = when[:8]
        scope = f"{day}/{self.region}/s3/aws4_request"
        credentials = self.source.get_frozen_credentials()
        query = {
            **params,
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": f"{credentials.access_key}/{scope}",
            "X-Amz-Date": when,
            "X-Amz-Expires": str(ttl_s),
            "X-Amz-SignedHeaders": "host",
        }
        if credentials.token:
            query["X-Amz-Security-Token"] = credentials.token
        canonical_query = "&".join(
            f"{_quote(key)}={_quote(value)}" for key, value in sorted(query.items())
        )
        path = _quote(self.base_path + name, safe=UNRESERVED + "/")
        canonical_request = "\n".join(
            ("GET", path, canonical_query, f"host:{self.host}\n", "host", UNSIGNED_PAYLOAD)
        )
        string_to_sign = "\n".join(
            (ALGORITHM, when, scope, hashlib.sha256(canonical_request.encode()).hexdigest())
        )
        key = ("AWS4" + credentials.secret_key).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = _hmac(key, part)
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{self.scheme}://{self.host}{path}?{canonical_query}&X-Amz-Signature={signature}"
