"""The Files API (OpenAI's shape) over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openai import OpenAI

from aigc.settings import Settings
from tests.conftest import TeamKey, chat_completion_lines

JSONL = b'{"custom_id": "a"}\n{"custom_id": "b"}\n'


def _upload(client: TestClient, data: bytes = JSONL, purpose: str = "batch") -> dict[str, object]:
    response = client.post(
        "/v1/files",
        files={"file": ("requests.jsonl", data, "application/jsonl")},
        data={"purpose": purpose},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_upload_get_and_download(client: TestClient) -> None:
    before = int(time.time())
    uploaded = _upload(client)
    assert uploaded["object"] == "file"
    assert str(uploaded["id"]).startswith("file-")
    assert uploaded["bytes"] == len(JSONL)
    assert uploaded["filename"] == "requests.jsonl"
    assert uploaded["purpose"] == "batch"
    assert uploaded["status"] == "processed"
    assert isinstance(uploaded["created_at"], int) and uploaded["created_at"] >= before - 5

    assert client.get(f"/v1/files/{uploaded['id']}").json() == uploaded
    content = client.get(f"/v1/files/{uploaded['id']}/content")
    assert content.status_code == 200
    assert content.content == JSONL


def test_each_upload_is_a_new_file(client: TestClient) -> None:
    first, second = _upload(client), _upload(client, b"other\n")
    assert first["id"] != second["id"]
    assert client.get(f"/v1/files/{first['id']}/content").content == JSONL


MISSING_ID = "file-" + "0" * 32


def test_unknown_file_is_404(client: TestClient) -> None:
    for path in (f"/v1/files/{MISSING_ID}", f"/v1/files/{MISSING_ID}/content"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"
    deleted = client.delete(f"/v1/files/{MISSING_ID}")
    assert deleted.status_code == 404
    assert deleted.json()["error"]["type"] == "not_found"


@pytest.mark.parametrize(
    "file_id",
    [
        "file-missing",
        "%00",
        "file-" + "0" * 31 + "%00",
        "file-%00" + "0" * 31,
        "file-" + "A" * 32,  # ids are lower-case hex
        "file-" + "0" * 32 + "0",
        "file-" + "0" * 10_000,
        "file-%E2%80%AE" + "0" * 29,  # a bidi override
        "file-..%2F..%2Fetc",
    ],
)
def test_malformed_file_ids_are_422_naming_the_field(client: TestClient, file_id: str) -> None:
    for method, path in (
        ("GET", f"/v1/files/{file_id}"),
        ("GET", f"/v1/files/{file_id}/content"),
        ("DELETE", f"/v1/files/{file_id}"),
    ):
        response = client.request(method, path)
        assert response.status_code in (404, 422), (method, path, response.text)
        error = response.json()["error"]
        if response.status_code == 422:
            assert [e["field"] for e in error["errors"]] == ["file_id"]


def test_purpose_is_checked(client: TestClient) -> None:
    response = client.post(
        "/v1/files", files={"file": ("x.jsonl", JSONL)}, data={"purpose": "fine-tune"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["field"] == "purpose"
    missing = client.post("/v1/files", files={"file": ("x.jsonl", JSONL)})
    assert missing.status_code == 422
    assert missing.json()["error"]["errors"][0]["field"] == "purpose"


def test_file_part_and_form_are_required(client: TestClient) -> None:
    no_file = client.post("/v1/files", data={"purpose": "batch"}, files={"other": ("x", b"")})
    assert no_file.status_code == 422
    assert {e["field"] for e in no_file.json()["error"]["errors"]} == {"other"}
    as_field = client.post(
        "/v1/files",
        data={"purpose": "batch", "file": "not a file part"},
        files={"dummy": ("x", b"")},
    )
    assert as_field.status_code == 422
    json_body = client.post("/v1/files", json={"purpose": "batch"})
    assert json_body.status_code == 422
    assert json_body.json()["error"]["errors"][0]["field"] == "file"


def test_upload_size_is_bounded(
    app_client: Callable[[Settings], TestClient], settings: Settings
) -> None:
    small = settings.model_copy(update={"max_batch_bytes": 1024})
    with app_client(small) as limited:
        fits = limited.post(
            "/v1/files", files={"file": ("ok.jsonl", b"x" * 512)}, data={"purpose": "batch"}
        )
        assert fits.status_code == 200, fits.text
        too_big = limited.post(
            "/v1/files", files={"file": ("big.jsonl", b"x" * 2048)}, data={"purpose": "batch"}
        )
        assert too_big.status_code == 413
        assert too_big.json()["error"]["type"] == "payload_too_large"


def test_upload_size_is_bounded_without_content_length(
    app_client: Callable[[Settings], TestClient], settings: Settings
) -> None:
    # A chunked upload declares no length: the body is counted as it arrives.
    small = settings.model_copy(update={"max_batch_bytes": 1024})
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n'
        f"\r\n{'x' * 4096}\r\n--{boundary}--\r\n"
    ).encode()

    def chunks() -> object:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    with app_client(small) as limited:
        response = limited.post(
            "/v1/files",
            content=chunks(),  # type: ignore[arg-type]
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413


def _raw_upload(client: TestClient, filename: bytes, data: bytes = JSONL) -> dict[str, object]:
    """An upload whose file name is sent byte for byte (httpx would percent-encode control
    characters and quotes, as browsers do; a hostile client need not)."""
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'
    ).encode()
    body += filename + b'"\r\nContent-Type: application/jsonl\r\n\r\n' + data
    body += f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        "/v1/files",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.jsonl", "report.jsonl"),
        ("invoice\u202egnp.jsonl", "invoicegnp.jsonl"),  # right-to-left override
        ("a\u200bb\u2066c\ufeff.jsonl", "abc.jsonl"),  # zero-width, isolate, BOM
        ("tab\there\x01\x7f.jsonl", "tabhere.jsonl"),
        ("line\u2028break.jsonl", "linebreak.jsonl"),
        ('say "hi" <now>?.jsonl', "say _hi_ _now__.jsonl"),
        ("  ..hidden.jsonl ", "hidden.jsonl"),
        ("...", "upload"),
        ("\u202e", "upload"),
        ("r\u00e9sum\u00e9 \U0001f4c4.jsonl", "r\u00e9sum\u00e9 \U0001f4c4.jsonl"),
        ("wide\u3000space.jsonl", "wide space.jsonl"),
    ],
)
def test_upload_names_are_sanitized(client: TestClient, sent: str, stored: str) -> None:
    uploaded = _raw_upload(client, sent.encode("utf-8"))
    assert uploaded["filename"] == stored
    content = client.get(f"/v1/files/{uploaded['id']}/content")
    assert content.status_code == 200
    assert content.content == JSONL
    disposition = content.headers["content-disposition"]
    assert disposition.isascii() and "\r" not in disposition and "\n" not in disposition
    quoted = quote(stored)
    if quoted == stored:
        assert disposition == f'attachment; filename="{stored}"'
    else:  # RFC 5987 for anything else: the client decodes the exact name back
        assert disposition == f"attachment; filename*=utf-8''{quoted}"


def test_long_names_are_cut_keeping_the_extension(client: TestClient) -> None:
    uploaded = _raw_upload(client, ("x" * 1000 + ".jsonl").encode())
    name = str(uploaded["filename"])
    assert len(name) == 255 and name.endswith("x.jsonl")
    no_extension = _raw_upload(client, ("\u00e9" * 400).encode())
    assert no_extension["filename"] == "\u00e9" * 255


def test_downloads_are_nosniff_and_ranged(client: TestClient) -> None:
    uploaded = _upload(client)
    path = f"/v1/files/{uploaded['id']}/content"
    whole = client.get(path)
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["accept-ranges"] == "bytes"
    part = client.get(path, headers={"Range": "bytes=2-6"})
    assert part.status_code == 206
    assert part.content == JSONL[2:7]
    assert part.headers["content-range"] == f"bytes 2-6/{len(JSONL)}"
    past_end = client.get(path, headers={"Range": f"bytes={len(JSONL) + 10}-"})
    assert past_end.status_code == 416
    assert past_end.headers["content-range"] == f"bytes */{len(JSONL)}"
    assert past_end.json()["error"]["errors"][0]["field"] == "range"
    # A malformed Range is ignored, as RFC 9110 allows: the whole file.
    malformed = client.get(path, headers={"Range": "bytes=abc"})
    assert malformed.status_code == 200 and malformed.content == JSONL


def test_delete_removes_row_and_bytes(client: TestClient, settings: Settings) -> None:
    uploaded = _upload(client)
    stored = Path(settings.artifact_dir) / "files" / str(uploaded["id"])
    assert stored.is_file()
    response = client.delete(f"/v1/files/{uploaded['id']}")
    assert response.status_code == 200, response.text
    assert response.json() == {"id": uploaded["id"], "object": "file", "deleted": True}
    assert not stored.exists()
    assert client.get(f"/v1/files/{uploaded['id']}").status_code == 404
    assert client.get(f"/v1/files/{uploaded['id']}/content").status_code == 404
    assert client.delete(f"/v1/files/{uploaded['id']}").status_code == 404


def test_delete_is_409_while_an_unfinished_batch_uses_the_file(client: TestClient) -> None:
    uploaded = _upload(client, chat_completion_lines(3))
    created = client.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert created.status_code == 202, created.text
    batch_id = created.json()["id"]
    # No worker runs: the batch is in progress, so its input stays.
    refused = client.delete(f"/v1/files/{uploaded['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"]["type"] == "conflict"
    assert batch_id in refused.json()["error"]["message"]
    assert client.get(f"/v1/files/{uploaded['id']}/content").content == chat_completion_lines(3)

    # Once the batch has finished (here: cancelled), its files may go, as on OpenAI.
    assert client.post(f"/v1/batches/{batch_id}/cancel").status_code == 200
    finished = client.get(f"/v1/batches/{batch_id}").json()
    assert finished["status"] == "cancelled" and finished["error_file_id"]
    for file_id in (uploaded["id"], finished["error_file_id"], finished["output_file_id"]):
        response = client.delete(f"/v1/files/{file_id}")
        assert response.status_code == 200, response.text
    # The batch keeps naming its deleted files; they answer 404.
    again = client.get(f"/v1/batches/{batch_id}").json()
    assert again["error_file_id"] == finished["error_file_id"]
    assert client.get(f"/v1/files/{finished['error_file_id']}").status_code == 404


def test_openai_client_uploads_downloads_and_deletes(client: TestClient, team: TeamKey) -> None:
    with OpenAI(
        base_url="http://testserver/v1", api_key=team.key, http_client=client, max_retries=0
    ) as openai_client:
        uploaded = openai_client.files.create(file=("in.jsonl", JSONL), purpose="batch")
        assert openai_client.files.content(uploaded.id).read() == JSONL
        deleted = openai_client.files.delete(uploaded.id)
        assert deleted.id == uploaded.id and deleted.deleted is True
