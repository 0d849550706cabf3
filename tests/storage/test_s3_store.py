"""S3Store against a real S3 server (SeaweedFS): the same contract as the local store
(atomic puts, missing keys, key rules), presigned downloads, and the readiness probe."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from pydantic import SecretStr, ValidationError

from aigc.s3_store import S3Store, content_disposition, make_client, make_presigner
from aigc.seaweedfs import SECRET_ACCESS_KEY
from aigc.settings import Settings
from aigc.storage import InvalidKey, StoreUnavailable, open_store
from tests.storage.conftest import BUCKET, S3Server


@pytest.fixture
def store(s3_settings: Settings) -> S3Store:
    made = open_store(s3_settings)
    assert isinstance(made, S3Store)
    return made


def test_put_open_exists_delete(store: S3Store) -> None:
    assert not store.exists("jobs/a/one.txt")
    store.put("jobs/a/one.txt", b"hello")
    store.put("files/two", io.BytesIO(b"from a stream"))
    assert store.exists("jobs/a/one.txt")
    with store.open("jobs/a/one.txt") as body:
        assert body.read() == b"hello"
    with store.open("files/two") as body:
        assert body.read() == b"from a stream"
    store.put("jobs/a/one.txt", b"replaced")  # a PUT replaces the object whole
    with store.open("jobs/a/one.txt") as body:
        assert body.read() == b"replaced"
    store.delete("jobs/a/one.txt")
    store.delete("jobs/a/one.txt")  # twice is harmless
    assert not store.exists("jobs/a/one.txt")
    with pytest.raises(FileNotFoundError):
        store.open("jobs/a/one.txt")
    assert store.local_path("files/two") is None


def test_stream_put_reads_from_the_current_position(store: S3Store) -> None:
    stream = io.BytesIO(b"skip:keep")
    stream.seek(5)
    store.put("files/partial", stream)
    with store.open("files/partial") as body:
        assert body.read() == b"keep"


def test_put_many_stores_every_object(store: S3Store) -> None:
    items = [(f"jobs/b/{n}.bin", bytes([n]) * (n + 1)) for n in range(20)]
    store.put_many(items)
    for key, data in items:
        with store.open(key) as body:
            assert body.read() == data


def test_delete_many_deletes_in_bulk(store: S3Store) -> None:
    keys = [f"jobs/f/{n}.bin" for n in range(1200)]  # more than one request's 1000
    store.put_many((key, b"x") for key in keys[:50])
    assert store.delete_many([*keys, "../not-a-key"]) == set(keys)  # missing ones count
    assert not any(store.exists(key) for key in keys[:50])


def test_keys_are_checked_before_any_request(store: S3Store) -> None:
    for bad in ("", "/abs", "../up", "a/../b", "a//b", "a\\b", "./a", "a/\x00"):
        with pytest.raises(InvalidKey):
            store.put(bad, b"x")
        with pytest.raises(InvalidKey):
            store.open(bad)
        with pytest.raises(InvalidKey):
            store.exists(bad)


def test_objects_live_under_the_prefix(store: S3Store, s3_server: S3Server) -> None:
    store.put("jobs/c/x.txt", b"x")
    client: Any = s3_server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix + "/")
    assert [item["Key"] for item in listed["Contents"]] == [f"{store.prefix}/jobs/c/x.txt"]
    assert store.location == f"s3://{BUCKET}/{store.prefix}"


def test_presigned_url_serves_the_bytes_with_type_and_name(store: S3Store) -> None:
    store.put("jobs/d/pic.png", b"\x89PNG fake")
    url = store.download_url("jobs/d/pic.png", ttl_s=60, media_type="image/png", filename="pic.png")
    assert url is not None
    response = httpx.get(url)  # no credentials: the URL alone
    assert response.status_code == 200
    assert response.content == b"\x89PNG fake"
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'attachment; filename="pic.png"'
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert httpx.get(tampered).status_code == 403


def test_presigned_url_names_a_unicode_file(store: S3Store) -> None:
    store.put("files/u", b"data")
    url = store.download_url(
        "files/u", ttl_s=60, media_type="application/octet-stream", filename="résumé.jsonl"
    )
    assert url is not None
    disposition = httpx.get(url).headers["content-disposition"]
    assert disposition == "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.jsonl"


def test_presigned_url_expires(store: S3Store) -> None:
    store.put("jobs/e/short.txt", b"soon gone")
    url = store.download_url(
        "jobs/e/short.txt", ttl_s=1, media_type="text/plain", filename="short.txt"
    )
    assert url is not None
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403


def test_public_endpoint_signs_for_the_clients_address(
    s3_settings: Settings, s3_server: S3Server
) -> None:
    public = s3_settings.model_copy(update={"s3_public_endpoint_url": "https://files.example.com"})
    store = open_store(public)
    url = store.download_url("a/b", ttl_s=60, media_type="text/plain", filename="b")
    assert url is not None and url.startswith(f"https://files.example.com/{BUCKET}/")
    assert s3_server.endpoint_url not in url


def test_check_writes_reads_and_deletes_a_probe(store: S3Store, s3_server: S3Server) -> None:
    store.check()
    client: Any = s3_server.client()
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix + "/")
    assert listed.get("KeyCount", 0) == 0  # the probe is gone again


def test_unreachable_server_is_store_unavailable(s3_settings: Settings, free_port: Any) -> None:
    dead = open_store(
        s3_settings.model_copy(
            update={
                "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
                "s3_connect_timeout_s": 0.5,
            }
        )
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        dead.check()
    assert time.monotonic() - started < 10
    assert dead.location in str(raised.value)
    with pytest.raises(StoreUnavailable):
        dead.exists("a")


def test_wrong_credentials_are_store_unavailable(s3_settings: Settings) -> None:
    wrong = open_store(
        s3_settings.model_copy(update={"s3_secret_access_key": SecretStr("not-the-secret")})
    )
    with pytest.raises(StoreUnavailable) as raised:
        wrong.put("a", b"x")
    assert "not-the-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("local", "local"),
        ("s3://bucket", "s3://bucket"),
        ("s3://my.bucket-1/", "s3://my.bucket-1"),
        ("s3://bucket/a/b/", "s3://bucket/a/b"),
    ],
)
def test_store_setting_forms(given: str, normalised: str) -> None:
    assert Settings(artifact_store=given).artifact_store == normalised


@pytest.mark.parametrize(
    "bad", ["s3:/bucket", "s3://", "s3://B", "s3://Upper", "s3://ok/../x", "gs://b", "/var/x"]
)
def test_bad_store_setting_names_the_variable(bad: str) -> None:
    with pytest.raises(ValidationError, match="AIGC_ARTIFACT_STORE"):
        Settings(artifact_store=bad)


def test_settings_reprs_hide_the_secret(s3_settings: Settings) -> None:
    assert SECRET_ACCESS_KEY not in repr(s3_settings)


@pytest.mark.parametrize("bad", ["127.0.0.1:9000", "http://host/path", "ftp://host", "http://"])
def test_bad_endpoint_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="s3_endpoint_url"):
        Settings(s3_endpoint_url=bad)
    assert Settings(s3_endpoint_url="http://127.0.0.1:9000/").s3_endpoint_url == (
        "http://127.0.0.1:9000"
    )


@pytest.mark.parametrize("token", [None, "a-session-token/with+odd=chars"])
def test_presigned_urls_are_the_ones_botocore_makes(
    monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, token: str | None
) -> None:
    """Our SigV4 presigner (microseconds) against botocore's (milliseconds), at one
    instant: the same path, query and signature, session tokens included."""
    fixed = datetime(2026, 12, 1, 12, 34, 56)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda remove_tzinfo=True: fixed)
    session = boto3.session.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        region_name="eu-west-3",
    )
    settings = Settings(artifact_store="s3://bucket-x", s3_endpoint_url=s3_server.endpoint_url)
    for endpoint in (s3_server.endpoint_url, None):  # path style, and AWS's virtual hosts
        client = make_client(session, settings, endpoint)
        presigner = make_presigner(session, client, "bucket-x")
        key = "pre fix/jobs/ab/ü+1.png"
        overrides = {
            "response-content-type": "text/plain; charset=utf-8",
            "response-content-disposition": content_disposition("résumé 1.txt"),
        }
        ours = presigner.url(key, ttl_s=900, params=overrides, now=fixed.replace(tzinfo=UTC))
        theirs = client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": "bucket-x",
                "Key": key,
                "ResponseContentType": overrides["response-content-type"],
                "ResponseContentDisposition": overrides["response-content-disposition"],
            },
            ExpiresIn=900,
        )
        assert _parts(ours) == _parts(theirs)


def _parts(url: str) -> tuple[str, str, str, dict[str, list[str]]]:
    split = urlsplit(url)
    return split.scheme, split.netloc, split.path, parse_qs(split.query)
