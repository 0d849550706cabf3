"""The /ui fragments are left out of the OpenAPI document, so the API fuzz test does not
reach them: each is sent hostile values here, and answers a 4xx naming the field (or a page),
never a 500."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey

LONG = "x" * 5000
BAD_GETS = [
    ("/ui/parts/jobs/params", {"model": LONG}, "model"),
    ("/ui/parts/jobs/params", {"model": "no-such-model"}, "model"),
    ("/ui/parts/jobs/params", {}, "model"),
    ("/ui/parts/jobs/models", {"kind": "video"}, "kind"),
    ("/ui/parts/jobs/not-a-uuid", {}, "job_id"),
    ("/ui/parts/batches/not-a-uuid/items", {}, "batch_id"),
    (f"/ui/parts/batches/{uuid.uuid4()}/items", {"status": "x" * 17}, "status"),
    (f"/ui/parts/batches/{uuid.uuid4()}/items", {"q": LONG}, "q"),
]
BAD_POSTS = [
    ("/ui/parts/tables/preview", {"name": LONG}, b"prompt\nhi\n", "name"),
    ("/ui/parts/tables", {"name": "a.csv"}, b"\x00\xff\xfe" * 10, "file"),
    ("/ui/parts/tables", {"name": "a.xlsx"}, b"PK\x03\x04broken", "file"),
]


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _named(response: httpx.Response, field: str) -> bool:
    body = response.json()
    return field in {error["field"] for error in body["error"].get("errors") or []} or (
        field in body["error"]["message"]
    )


@pytest.mark.parametrize(("path", "params", "field"), BAD_GETS)
def test_bad_fragment_requests_are_4xx_naming_the_field(
    client: TestClient, team: TeamKey, path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(path, params=params, headers=team.headers)
    assert 400 <= response.status_code < 500, response.text
    assert _named(response, field), response.text


@pytest.mark.parametrize(("path", "params", "body", "field"), BAD_POSTS)
def test_bad_uploads_are_4xx_naming_the_field(
    client: TestClient, team: TeamKey, path: str, params: dict[str, str], body: bytes, field: str
) -> None:
    response = client.post(path, params=params, content=body, headers=team.headers)
    assert 400 <= response.status_code < 500, response.text
    assert _named(response, field), response.text


def test_a_preview_of_garbage_lists_the_problem_and_offers_no_submit(
    client: TestClient, team: TeamKey
) -> None:
    for name, body in [("a.csv", b"\x00\xff\xfe"), ("a.jsonl", b"{nope\n"), ("a.xlsx", b"PK")]:
        response = client.post(
            "/ui/parts/tables/preview", params={"name": name}, content=body, headers=team.headers
        )
        assert response.status_code == 200, response.text
        assert "error" in response.text and "submit-batch" not in response.text
