"""Submitting, validating, reading and canceling jobs over HTTP (no worker running)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.settings import Settings
from tests.conftest import count_jobs, waiting_jobs


def test_submit_returns_202_queued_with_location(client: TestClient, settings: Settings) -> None:
    response = client.post(
        "/v1/jobs", json={"kind": "text", "prompt": "hello", "metadata": {"team": "a"}}
    )
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "queued"
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["model"] == "tiny-text"
    # Defaults are applied and stored: the job records what will run.
    assert job["params"] == {"max_new_tokens": 64, "temperature": 0.7, "top_p": 1.0, "seed": None}
    assert job["metadata"] == {"team": "a"}
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "queued"
    # It waits in PostgreSQL for the dispatcher; the API sent nothing to the broker.
    assert redis.Redis.from_url(settings.redis_url or "").dbsize() == 0
    assert waiting_jobs(settings) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "video", "prompt": "x"}, "kind"),
        ({"kind": "text", "prompt": ""}, "prompt"),
        ({"kind": "text"}, "prompt"),
        ({"kind": "text", "prompt": "x", "model": "gpt-17"}, "model"),
        ({"kind": "text", "prompt": "x", "model": "tiny-image"}, "model"),
        ({"kind": "text", "prompt": "x", "params": {"max_new_tokens": 0}}, "params.max_new_tokens"),
        (
            {"kind": "text", "prompt": "x", "params": {"max_new_tokens": 4097}},
            "params.max_new_tokens",
        ),
        ({"kind": "text", "prompt": "x", "params": {"temperature": 2.5}}, "params.temperature"),
        ({"kind": "text", "prompt": "x", "params": {"top_p": 0}}, "params.top_p"),
        ({"kind": "text", "prompt": "x", "params": {"seed": -1}}, "params.seed"),
        ({"kind": "text", "prompt": "x", "params": {"beams": 3}}, "params.beams"),
        ({"kind": "image", "prompt": "x", "params": {"width": 100}}, "params.width"),
        ({"kind": "image", "prompt": "x", "params": {"height": 4096}}, "params.height"),
        ({"kind": "image", "prompt": "x", "params": {"steps": 151}}, "params.steps"),
        ({"kind": "image", "prompt": "x", "params": {"num_images": 9}}, "params.num_images"),
        ({"kind": "audio", "prompt": "x", "params": {"speaking_rate": 10}}, "params.speaking_rate"),
        ({"kind": "text", "prompt": "x", "colour": "red"}, "colour"),
        ({"kind": "text", "prompt": "x", "metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"kind": "text", "prompt": "nul\x00byte"}, "prompt"),
        ({"kind": "text", "prompt": "x" * 32_001}, "prompt"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    client: TestClient, db_engine: sa.Engine, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == ("model_not_found" if field == "model" else "invalid_request")
    assert field in [e["field"] for e in error["errors"]]
    assert field in error["message"]
    assert count_jobs(db_engine) == 0


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_request"


def test_unknown_job_is_404_json(client: TestClient) -> None:
    response = client.get("/v1/jobs/0190f5c4-0000-7000-8000-000000000000")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert client.get("/v1/jobs/not-a-uuid").status_code == 422


def test_models_lists_each_kind_with_schema_and_defaults(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()["data"]}
    assert {"echo", "tiny-text", "tiny-image", "tiny-audio"} <= set(models)
    defaults = {m["kind"]: m["name"] for m in models.values() if m["default"]}
    assert defaults == {"text": "tiny-text", "image": "tiny-image", "audio": "tiny-audio"}
    image_schema = models["tiny-image"]["params_schema"]["properties"]
    assert image_schema["width"]["default"] == 64
    assert image_schema["width"]["multipleOf"] == 8
    assert image_schema["steps"]["maximum"] == 150
    # Offline, hub models that cannot be downloaded are not offered.
    assert "stabilityai/sd-turbo" not in models


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "store": "ok"}


def test_openapi_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/jobs" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_oversized_body_is_413_and_stores_nothing(client: TestClient, db_engine: sa.Engine) -> None:
    body = b'{"kind": "text", "prompt": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"

    def chunks():  # no Content-Length: cut off while it arrives
        for _ in range(40):
            yield b"x" * 65536

    streamed = client.post(
        "/v1/jobs", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert count_jobs(db_engine) == 0


def test_invalid_utf8_body_is_422(client: TestClient, db_engine: sa.Engine) -> None:
    body = b'{"kind": "text", "prompt": "\xff\xfe bad"}'
    response = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert count_jobs(db_engine) == 0
