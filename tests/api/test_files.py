"""The Files API (OpenAI's shape) over HTTP."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app

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


def test_unknown_file_is_404(client: TestClient) -> None:
    for path in ("/v1/files/file-missing", "/v1/files/file-missing/content"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


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


def test_upload_size_is_bounded(settings: Settings) -> None:
    small = settings.model_copy(update={"max_batch_bytes": 1024})
    with TestClient(create_app(small)) as limited:
        fits = limited.post(
            "/v1/files", files={"file": ("ok.jsonl", b"x" * 512)}, data={"purpose": "batch"}
        )
        assert fits.status_code == 200, fits.text
        too_big = limited.post(
            "/v1/files", files={"file": ("big.jsonl", b"x" * 2048)}, data={"purpose": "batch"}
        )
        assert too_big.status_code == 413
        assert too_big.json()["error"]["type"] == "payload_too_large"


def test_upload_size_is_bounded_without_content_length(settings: Settings) -> None:
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

    with TestClient(create_app(small)) as limited:
        response = limited.post(
            "/v1/files",
            content=chunks(),  # type: ignore[arg-type]
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413
