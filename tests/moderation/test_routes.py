"""The rules API and the operators' view over HTTP (in-process, real PostgreSQL and
Redis): admin keys only, every input bounded and named when wrong; a blocked job as a
client sees it; the audit rows that submits, downloads and rule changes leave."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aigc.moderation import MAX_PATTERN_CHARS, MAX_TERMS
from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey
from tests.moderation.conftest import Rig

RULES = "/v1/moderation/rules"
WEAPONS = {"team": "alpha", "name": "weapons", "kind": "terms", "terms": ["pipe bomb"],
           "reason_code": "violence"}  # fmt: skip


@pytest.fixture
def client(settings: Settings, team: TeamKey) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers=team.headers) as test_client:
        yield test_client


def _errors(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["error"]["errors"]]


def test_rules_need_an_admin_key(client: TestClient, team: TeamKey) -> None:
    assert client.get(RULES, headers={"Authorization": ""}).status_code == 401
    assert client.get(RULES).status_code == 403  # a member key
    assert client.post(RULES, json=WEAPONS).status_code == 403
    assert client.delete(f"{RULES}/01a2331c-cdd5-7188-b134-6ff065051d7f").status_code == 403
    assert client.get("/v1/admin/blocked").status_code == 403


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "regex", "terms": None, "pattern": "("}, "pattern"),
        ({"kind": "regex", "terms": None, "pattern": "a" * (MAX_PATTERN_CHARS + 1)}, "pattern"),
        ({"terms": ["x"] * (MAX_TERMS + 1)}, "terms"),
        ({"terms": ["   "]}, "terms"),
        ({"terms": None}, "terms"),
        ({"reason_code": "Not A Code"}, "reason_code"),
        ({"name": "n" * 65}, "name"),
        ({"kind": "words"}, "kind"),
        ({"team": "no spaces allowed"}, "team"),
        ({"pattern": "x"}, "pattern"),  # a terms rule has no pattern
        ({"extra": 1}, "extra"),
    ],
)
def test_a_bad_rule_is_a_422_naming_its_field(
    client: TestClient, admin: TeamKey, change: dict[str, Any], field: str
) -> None:
    response = client.post(RULES, json={**WEAPONS, **change}, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert field in _errors(response)


def test_create_list_delete_with_audit(client: TestClient, admin: TeamKey, rig: Rig) -> None:
    response = client.post(RULES, json=WEAPONS, headers=admin.headers)
    assert response.status_code == 201, response.text
    rule = response.json()
    assert (rule["team"], rule["name"], rule["terms"]) == ("alpha", "weapons", ["pipe bomb"])
    assert rule["created_by"] == admin.prefix
    global_rule = client.post(
        RULES, json={**WEAPONS, "team": None, "name": "everyone"}, headers=admin.headers
    ).json()

    listed = client.get(RULES, params={"team": "alpha"}, headers=admin.headers).json()["data"]
    assert [r["id"] for r in listed] == [rule["id"]]
    assert [r["name"] for r in client.get(RULES, headers=admin.headers).json()["data"]] == [
        "everyone"
    ]
    missing = client.get(RULES, params={"team": "nobody"}, headers=admin.headers)
    assert missing.status_code == 404
    nobody = client.post(RULES, json={**WEAPONS, "team": "nobody"}, headers=admin.headers)
    assert nobody.status_code == 404 and _errors(nobody) == ["team"]

    assert client.delete(f"{RULES}/{rule['id']}", headers=admin.headers).status_code == 204
    assert client.delete(f"{RULES}/{rule['id']}", headers=admin.headers).status_code == 404
    assert client.get(RULES, params={"team": "alpha"}, headers=admin.headers).json()["data"] == []

    created = {e.target_id: e for e in rig.audit("rule.created")}
    assert created[rule["id"]].key_prefix == admin.prefix
    assert created[rule["id"]].details == {"name": "weapons", "kind": "terms",
                                           "reason_code": "violence"}  # fmt: skip
    assert global_rule["id"] in created
    assert rule["id"] in {e.target_id for e in rig.audit("rule.deleted")}


def test_a_blocked_job_as_clients_and_operators_see_it(
    client: TestClient, admin: TeamKey, team: TeamKey, other_team: TeamKey, rig: Rig
) -> None:
    assert client.post(RULES, json=WEAPONS, headers=admin.headers).status_code == 201
    batch = client.post(
        "/v1/batches",
        json={"jobs": [{"kind": "text", "model": "echo", "prompt": p, "custom_id": c}
                       for c, p in (("a", "fine"), ("b", "a pipe bomb"), ("c", "also fine"))]},
    ).json()  # fmt: skip
    job = client.post("/v1/jobs", json={"kind": "text", "model": "echo", "prompt": "pipe bomb"})
    rig.dispatcher.refill()

    blocked = client.get(f"/v1/jobs/{job.json()['id']}").json()
    assert blocked["status"] == "blocked" and blocked["worker"] is None
    assert blocked["error"]["code"] == "content_blocked"
    assert blocked["error"]["moderation"]["rule"] == "weapons"
    assert blocked["error"]["moderation"]["reason_code"] == "violence"
    assert blocked["error"]["moderation"]["stage"] == "input"
    listed = client.get("/v1/jobs", params={"status": "blocked"}).json()["data"]
    assert {j["custom_id"] for j in listed} == {"b", None}

    counts = client.get(f"/v1/batches/{batch['id']}").json()["counts"]
    assert (counts["blocked"], counts["queued"]) == (1, 2)

    view = client.get("/v1/admin/blocked", params={"team": "alpha"}, headers=admin.headers)
    assert view.status_code == 200
    assert {(j["team"], j["custom_id"]) for j in view.json()["data"]} == {
        ("alpha", "b"),
        ("alpha", None),
    }
    assert view.json()["data"][0]["moderation"]["rule"] == "weapons"
    other = client.get("/v1/admin/blocked", params={"team": other_team.name}, headers=admin.headers)
    assert other.json()["data"] == []
    too_many = client.get("/v1/admin/blocked", params={"limit": 100_000}, headers=admin.headers)
    assert too_many.status_code == 422 and _errors(too_many) == ["limit"]

    # Submits: one row for the batch (not one per job), one for the single job.
    submitted = [e for e in rig.audit("batch.submitted") if e.target_id == batch["id"]]
    assert len(submitted) == 1 and submitted[0].details["jobs"] == 3
    assert submitted[0].key_prefix == team.prefix and submitted[0].actor_role == "member"
    assert [e.target_id for e in rig.audit("job.submitted")][-1] == job.json()["id"]


def test_downloads_are_audited(client: TestClient, rig: Rig, team: TeamKey) -> None:
    batch = client.post(
        "/v1/batches", json={"jobs": [{"kind": "text", "model": "echo", "prompt": "hi"}]}
    ).json()
    assert client.post(f"/v1/batches/{batch['id']}/cancel").status_code == 200
    assert client.get(f"/v1/batches/{batch['id']}/results").status_code == 200
    assert client.get(f"/v1/batches/{batch['id']}/archive").status_code == 200
    for action in ("results.downloaded", "archive.downloaded"):
        (event,) = [e for e in rig.audit(action) if e.target_id == batch["id"]]
        assert event.key_prefix == team.prefix and event.team_id == team.team_id
