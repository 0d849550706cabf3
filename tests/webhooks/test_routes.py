"""The webhook routes and fields through the API in-process, on the real PostgreSQL: bad
input is a 422 naming the field, another team's ids are 404s, secrets rotate."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey

JOB = {"kind": "text", "model": "echo", "prompt": "hi"}


@pytest.fixture
def client(settings: Settings, team: TeamKey) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=team.headers) as test_client:
        yield test_client


def _field_error(response: object, field: str) -> str:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    errors = response.json()["error"]["errors"]  # type: ignore[attr-defined]
    matching = [e["message"] for e in errors if e["field"] == field]
    assert matching, errors
    return str(matching[0])


@pytest.mark.parametrize(
    ("webhook", "why"),
    [
        ("http://hooks.example.com/x", "https"),
        ("https://user:secret@hooks.example.com/", "credentials"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:169.254.169.254]/", "metadata"),
        ("https://10.0.0.1/", "private"),
        ("https://[::1]/", "loopback"),
        ("https://localhost:8080/", "loopback"),
        ("not a url", "spaces"),
        ("https://hooks.example.com/" + "x" * 2048, "2048"),
    ],
)
def test_a_bad_job_webhook_is_a_422_naming_it(client: TestClient, webhook: str, why: str) -> None:
    response = client.post("/v1/jobs", json={**JOB, "webhook": webhook})
    assert why in _field_error(response, "webhook")


@pytest.mark.parametrize(
    ("filter_", "field"),
    [
        (["finished"], "webhook_events_filter.0"),
        (["job_completed"], "webhook_events_filter.0"),  # a batch's, not a job's
        ([], "webhook_events_filter"),
        ("completed", "webhook_events_filter"),
    ],
)
def test_a_bad_job_filter_is_a_422_naming_it(
    client: TestClient, filter_: object, field: str
) -> None:
    response = client.post(
        "/v1/jobs",
        json={**JOB, "webhook": "https://hooks.example.com/", "webhook_events_filter": filter_},
    )
    _field_error(response, field)


def test_batch_webhook_fields_are_checked_and_shown(client: TestClient) -> None:
    jobs = [{**JOB, "custom_id": "a"}]
    bad = client.post("/v1/batches", json={"jobs": jobs, "webhook": "https://127.0.0.1/"})
    assert "loopback" in _field_error(bad, "webhook")
    bad_filter = client.post(
        "/v1/batches",
        json={"jobs": jobs, "webhook": "https://h.example/", "webhook_events_filter": ["x"]},
    )
    _field_error(bad_filter, "webhook_events_filter.0")
    # A batch's jobs use the batch's webhook; a line's own is refused.
    per_line = client.post("/v1/batches", json={"jobs": [{**JOB, "webhook": "https://h.example/"}]})
    assert per_line.status_code == 422, per_line.text
    assert per_line.json()["error"]["errors"][0]["field"] == "webhook"
    good = client.post(
        "/v1/batches",
        json={
            "jobs": jobs,
            "webhook": "https://hooks.example.com/b",
            "webhook_events_filter": ["job_completed", "completed", "completed"],
        },
    )
    assert good.status_code == 202, good.text
    shown = client.get(f"/v1/batches/{good.json()['id']}").json()
    assert shown["webhook"] == "https://hooks.example.com/b"
    assert shown["webhook_events_filter"] == ["job_completed", "completed"]


def test_a_job_shows_its_webhook(client: TestClient) -> None:
    job = client.post(
        "/v1/jobs",
        json={**JOB, "webhook": "https://hooks.example.com/j", "webhook_events_filter": ["start"]},
    ).json()
    shown = client.get(f"/v1/jobs/{job['id']}").json()
    assert shown["webhook"] == "https://hooks.example.com/j"
    assert shown["webhook_events_filter"] == ["start"]
    plain = client.post("/v1/jobs", json=JOB).json()
    assert plain["webhook"] is None and plain["webhook_events_filter"] is None


def test_endpoints_are_managed_and_checked(client: TestClient) -> None:
    created = client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/e", "events": ["job.completed", "batch.started"]},
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert endpoint["enabled"] is True and endpoint["events"] == ["job.completed", "batch.started"]
    assert "private" in _field_error(
        client.post("/v1/webhooks", json={"url": "https://192.168.0.10/"}), "url"
    )
    _field_error(
        client.post("/v1/webhooks", json={"url": "https://h.example/", "events": ["job.done"]}),
        "events.0",
    )
    _field_error(
        client.post("/v1/webhooks", json={"url": "https://h.example/", "description": "d" * 300}),
        "description",
    )
    _field_error(client.post("/v1/webhooks", json={"url": "https://h.example/", "x": 1}), "x")
    path = f"/v1/webhooks/{endpoint['id']}"
    updated = client.patch(path, json={"enabled": False, "description": "cms"}).json()
    assert updated["enabled"] is False and updated["description"] == "cms"
    _field_error(client.patch(path, json={"url": "https://[fd00:ec2::254]/"}), "url")
    assert [e["id"] for e in client.get("/v1/webhooks").json()["data"]] == [endpoint["id"]]
    assert client.delete(path).status_code == 204
    assert client.get(path).status_code == 404
    assert client.get("/v1/webhooks/not-a-uuid").status_code == 422


def test_another_teams_webhooks_are_not_found(
    client: TestClient, settings: Settings, other_team: TeamKey
) -> None:
    endpoint = client.post("/v1/webhooks", json={"url": "https://hooks.example.com/"}).json()
    mine = client.get("/v1/webhooks/secret").json()["data"]
    with TestClient(create_app(settings), headers=other_team.headers) as other:
        path = f"/v1/webhooks/{endpoint['id']}"
        assert other.get(path).status_code == 404
        assert other.patch(path, json={"enabled": False}).status_code == 404
        assert other.delete(path).status_code == 404
        assert other.get("/v1/webhooks").json()["data"] == []
        theirs = other.get("/v1/webhooks/secret").json()["data"]
        assert theirs[0]["secret"] != mine[0]["secret"]
    assert client.get(f"/v1/webhooks/{endpoint['id']}").status_code == 200


def test_secret_is_made_once_and_rotates_with_an_overlap(client: TestClient) -> None:
    first = client.get("/v1/webhooks/secret")
    assert first.headers["cache-control"] == "no-store"
    [current] = first.json()["data"]
    assert current["secret"].startswith("whsec_") and current["expires_at"] is None
    assert client.get("/v1/webhooks/secret").json()["data"] == [current]
    rotated = client.post("/v1/webhooks/secret/rotate").json()["data"]
    assert len(rotated) == 2 and rotated[1]["secret"] == current["secret"]
    assert rotated[0]["expires_at"] is None and rotated[1]["expires_at"] is not None


def test_deliveries_routes_bound_their_input(client: TestClient) -> None:
    assert client.get("/v1/webhooks/deliveries").json()["data"] == []
    assert client.get("/v1/webhooks/deliveries", params={"limit": 101}).status_code == 422
    assert client.get("/v1/webhooks/deliveries", params={"status": "lost"}).status_code == 422
    missing = uuid.uuid4()
    assert client.get(f"/v1/webhooks/deliveries/{missing}").status_code == 404
    assert client.post(f"/v1/webhooks/deliveries/{missing}/redeliver").status_code == 404


def test_webhook_routes_need_a_key(settings: Settings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        assert anonymous.get("/v1/webhooks/secret").status_code == 401
        assert anonymous.get("/v1/webhooks/deliveries").status_code == 401


def test_a_jsonl_upload_takes_its_webhook_as_query_parameters(client: TestClient) -> None:
    jsonl = b'{"custom_id": "a", "kind": "text", "model": "echo", "prompt": "hi"}\n'
    headers = {"content-type": "application/x-ndjson"}
    created = client.post(
        "/v1/batches",
        content=jsonl,
        headers=headers,
        params=[
            ("webhook", "https://hooks.example.com/u"),
            ("webhook_events_filter", "job_completed"),
            ("webhook_events_filter", "completed"),
        ],
    )
    assert created.status_code == 202, created.text
    assert created.json()["webhook"] == "https://hooks.example.com/u"
    assert created.json()["webhook_events_filter"] == ["job_completed", "completed"]
    plain = client.post(
        "/v1/batches", content=jsonl, headers=headers, params={"webhook": "https://h.example/"}
    )
    assert plain.json()["webhook_events_filter"] == ["completed"]
    bad = client.post(
        "/v1/batches", content=jsonl, headers=headers, params={"webhook": "https://10.1.1.1/"}
    )
    assert "private" in _field_error(bad, "webhook")
    bad_filter = client.post(
        "/v1/batches",
        content=jsonl,
        headers=headers,
        params={"webhook": "https://h.example/", "webhook_events_filter": "never"},
    )
    _field_error(bad_filter, "webhook_events_filter.0")
    # A JSON body says its webhook itself.
    json_body = client.post(
        "/v1/batches",
        json={"jobs": [{**JOB, "custom_id": "a"}]},
        params={"webhook": "https://h.example/"},
    )
    _field_error(json_body, "webhook")
