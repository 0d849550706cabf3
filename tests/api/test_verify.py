"""`POST /v1/verify`'s input checks: every bad request is a 4xx naming what is wrong; a label
signed under another key is invalid and names no job."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from aigc.ids import uuid7
from aigc.labels import LabelSigner, png
from aigc.labels.label import MAX_LABEL_BYTES
from models.artifacts import png_artifact


def _field(body: dict[str, Any]) -> str:
    field: str = body["error"]["errors"][0]["field"]
    return field


def test_bad_requests_name_the_field(client: TestClient) -> None:
    empty = client.post("/v1/verify", content=b"", headers={"content-type": "image/png"})
    assert (empty.status_code, _field(empty.json())) == (422, "file")
    unknown = client.post("/v1/verify", content=b"\0\1", headers={"content-type": "image/gif"})
    assert (unknown.status_code, _field(unknown.json())) == (422, "file")
    long_label = client.post(
        "/v1/verify", content=b"text", params={"label": "x" * (MAX_LABEL_BYTES + 1)}
    )
    assert long_label.status_code == 422 and "label" in long_label.text
    too_big = client.post("/v1/verify", content=b"\0" * (1024 * 1024 + 1))
    assert too_big.status_code == 413
    anonymous = client.post(
        "/v1/verify", content=b"hi", headers={"authorization": "", "content-type": "text/plain"}
    )
    assert anonymous.status_code == 401


def test_a_label_from_elsewhere_is_invalid_and_names_nothing(client: TestClient) -> None:
    foreign = LabelSigner(b"f" * 32, "someone-else").label(
        content_id=uuid7(), job_id=uuid.uuid4(), team_id=uuid.uuid4(), model="m", model_revision=""
    )
    data = png.write(png_artifact(Image.new("RGB", (8, 8))).data, foreign)
    answer = client.post("/v1/verify", content=data).json()
    assert (answer["format"], answer["status"], answer["origin"], answer["job"]) == (
        "png",
        "invalid",
        "unknown",
        None,
    )
    assert answer["layers"][0]["label"]["producer"] == "someone-else"
    text = client.post("/v1/verify", content=b"hello", headers={"content-type": "text/plain"})
    assert (text.json()["format"], text.json()["status"]) == ("text", "missing")
