"""Artifact bytes in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, …), under a prefix.

Same keys as the local store (aigc.storage.check_key), prefixed. A PUT is atomic in S3:
readers see the whole object or none, multipart uploads included (the object appears on
completion). Clients download through presigned GET URLs, never through the API.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aigc.s3_presign import QueryPresigner
from aigc.settings import Settings
from aigc.storage import (
    PROBE_BYTES,
    Content,
    InvalidKey,
    StoreUnavailable,
    check_key,
    probe_key,
)

# boto3 makes its clients' classes at runtime; no stubs for them are installed.
S3Client = Any

# Tries per S3 call (first try included), with boto3's standard backoff: a blip is ridden
# out, an S3 that is down fails a readiness check in seconds, not minutes.
S3_MAX_ATTEMPTS = 3
# Streams above this go up in parts (atomic all the same); below, one PUT.
MULTIPART_THRESHOLD_BYTES = 64 * 1024 * 1024
# PUTs in flight at once in put_many; within botocore's pool of 10 connections per client.
PUT_CONCURRENCY = 8
# S3's most keys in one DeleteObjects request.
DELETE_BATCH_KEYS = 1000
# The key of the one URL botocore presigns at startup to show how it addresses the bucket.
ADDRESS_SAMPLE_KEY = "aigc-address-sample"
# Error codes of a key that is not there: HEAD answers a bare 404, GET names it.
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def content_disposition(filename: str) -> str:
    """`attachment` with the name, RFC 6266 style: names outside ASCII go as filename*."""
    quoted = urllib.parse.quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def make_session(settings: Settings) -> boto3.session.Session:
    """A boto3 session with the settings' credentials where given (else boto3's own lookup:
    environment, shared config, instance role)."""
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    return boto3.session.Session(
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        region_name=settings.s3_region,
    )


def make_client(
    session: boto3.session.Session, settings: Settings, endpoint_url: str | None
) -> S3Client:
    """A boto3 S3 client for this endpoint with the settings' timeouts."""
    config = Config(
        region_name=settings.s3_region,
        signature_version="s3v4",
        connect_timeout=settings.s3_connect_timeout_s,
        read_timeout=settings.s3_read_timeout_s,
        retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
        # S3-compatible servers reached by address serve buckets as paths, not subdomains.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


def make_presigner(session: boto3.session.Session, client: S3Client, bucket: str) -> QueryPresigner:
    """Presigned URLs for `bucket` at the address `client` uses: botocore presigns one
    URL, whose base (scheme, host, bucket path) every later URL shares."""
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError(
            "no S3 credentials: set AIGC_S3_ACCESS_KEY_ID and AIGC_S3_SECRET_ACCESS_KEY, "
            "or give boto3 its own (environment, instance role)"
        )
    sample = client.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": ADDRESS_SAMPLE_KEY}, ExpiresIn=1
    )
    base_url = sample.split(ADDRESS_SAMPLE_KEY, 1)[0]
    return QueryPresigner(base_url, client.meta.region_name, credentials)


class S3Store:
    """Objects under `prefix` in one bucket. `client` does the I/O; `presigner` signs
    download URLs for the address clients use."""

    def __init__(
        self, client: S3Client, bucket: str, prefix: str = "", *, presigner: QueryPresigner
    ) -> None:
        self.client = client
        self.presigner = presigner
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.location = "/".join(filter(None, (f"s3://{bucket}", self.prefix)))
        self._transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD_BYTES)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        """The store AIGC_ARTIFACT_STORE names (validated `s3://bucket[/prefix]`), with one
        client per process."""
        bucket, _, prefix = settings.artifact_store.removeprefix("s3://").partition("/")
        session = make_session(settings)
        client = make_client(session, settings, settings.s3_endpoint_url)
        public = settings.s3_public_endpoint_url
        public_client = make_client(session, settings, public) if public else client
        return cls(client, bucket, prefix, presigner=make_presigner(session, public_client, bucket))

    def _name(self, key: str) -> str:
        path = str(check_key(key))
        return f"{self.prefix}/{path}" if self.prefix else path

    def _unavailable(self, action: str, key: str, exc: Exception) -> StoreUnavailable:
        # The exception's text names the operation and the code, never the credentials.
        return StoreUnavailable(f"{self.location}: {action} {key}: {type(exc).__name__}: {exc}")

    def put(self, key: str, data: Content) -> None:
        name = self._name(key)
        try:
            if isinstance(data, bytes):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=data)
            else:
                # Read from the current position in parts: a large upload is never in memory.
                self.client.upload_fileobj(data, self.bucket, name, Config=self._transfer)
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("put", key, exc) from exc

    def put_many(self, items: Iterable[tuple[str, Content]]) -> None:
        """Several PUTs at once (each durable when S3 answers it): a chunk's artifacts cost
        about one round trip per PUT_CONCURRENCY objects, not one each. The first error is
        raised once every PUT has ended."""
        pending = list(items)
        if len(pending) <= 1:
            for key, data in pending:
                self.put(key, data)
            return
        with ThreadPoolExecutor(min(PUT_CONCURRENCY, len(pending))) as pool:
            futures = [pool.submit(self.put, key, data) for key, data in pending]
        for future in futures:
            future.result()

    def open(self, key: str) -> BinaryIO:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                raise FileNotFoundError(f"{self.location}: no object {key}") from exc
            raise self._unavailable("get", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("get", key, exc) from exc
        # botocore's StreamingBody is an io.IOBase: read(), a context manager, close().
        return cast(BinaryIO, response["Body"])

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING_CODES:
                return False
            raise self._unavailable("head", key, exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("head", key, exc) from exc
        return True

    def delete(self, key: str) -> None:
        # S3 answers a missing key with success too: deleting twice is harmless.
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("delete", key, exc) from exc

    def delete_many(self, keys: Sequence[str]) -> set[str]:
        """DeleteObjects, up to 1000 keys a request (S3's limit); keys S3 reports errors
        for are left out of the answer."""
        names = {}
        for key in keys:
            try:
                names[self._name(key)] = key
            except InvalidKey:
                continue  # never stored under such a key: nothing to delete
        listed = list(names)
        deleted: set[str] = set()
        for start in range(0, len(listed), DELETE_BATCH_KEYS):
            batch = listed[start : start + DELETE_BATCH_KEYS]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": name} for name in batch], "Quiet": True},
                )
            except (BotoCoreError, ClientError) as exc:
                raise self._unavailable("delete", f"{len(batch)} objects", exc) from exc
            # Quiet: only the failures are listed.
            refused = {error["Key"] for error in response.get("Errors", [])}
            deleted.update(names[name] for name in batch if name not in refused)
        return deleted

    def local_path(self, key: str) -> Path | None:
        return None

    def download_url(self, key: str, *, ttl_s: int, media_type: str, filename: str) -> str | None:
        """A presigned GET, made locally (no request to S3), that S3 answers with this
        Content-Type and an attachment Content-Disposition."""
        overrides = {
            "response-content-type": media_type,
            "response-content-disposition": content_disposition(filename),
        }
        return self.presigner.url(self._name(key), ttl_s=ttl_s, params=overrides)

    def check(self) -> None:
        key = probe_key()
        self.put(key, PROBE_BYTES)
        try:
            with self.open(key) as body:
                if body.read() != PROBE_BYTES:
                    raise StoreUnavailable(f"{self.location}: the probe read back different bytes")
        except FileNotFoundError as exc:
            raise StoreUnavailable(f"{self.location}: the probe was not there to read") from exc
        finally:
            self.delete(key)
