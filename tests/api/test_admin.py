"""The admin routes: teams and keys over HTTP, for admin keys only. A new key is answered
once; lists show prefixes, never keys or hashes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import TeamKey, auth_headers


def _name() -> str:
    return f"team-{uuid.uuid4().hex[:8]}"


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


def test_member_keys_get_403_and_no_key_401(client: TestClient, admin: TeamKey) -> None:
    routes = [
        ("POST", "/v1/admin/teams", {"name": _name()}),
        ("GET", "/v1/admin/teams", None),
        ("PATCH", "/v1/admin/teams/alpha", {"weight": 2}),
        ("POST", "/v1/admin/keys", {"team": "alpha"}),
        ("GET", "/v1/admin/keys", None),
        ("POST", f"/v1/admin/keys/{admin.prefix}/revoke", None),
    ]
    for method, path, body in routes:
        member = client.request(method, path, json=body)  # the client calls as team alpha
        assert _error(member, 403)["type"] == "forbidden", path
        anonymous = client.request(method, path, json=body, headers={"Authorization": ""})
        assert _error(anonymous, 401)["type"] == "unauthorized", path
    # Nothing was done: the team does not exist, the admin key still works.
    assert client.get("/v1/admin/teams", headers=admin.headers).status_code == 200


def test_create_list_and_update_teams(client: TestClient, admin: TeamKey) -> None:
    name = _name()
    created = client.post(
        "/v1/admin/teams",
        json={"name": name, "weight": 3, "max_queued": 100, "rate_per_s": 2.5},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["name"] == name and team["weight"] == 3
    assert (team["max_queued"], team["max_running"], team["rate_per_s"]) == (100, None, 2.5)
    assert team["explicit_labels"] is False

    listed = client.get("/v1/admin/teams", headers=admin.headers).json()["data"]
    assert team in listed
    assert {"alpha", "operators", "default"} <= {t["name"] for t in listed}

    # Fields left out stay; null lifts a limit.
    updated = client.patch(
        f"/v1/admin/teams/{name}",
        json={"max_running": 4, "max_queued": None},
        headers=admin.headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json() == {**team, "max_running": 4, "max_queued": None}
    marked = client.patch(
        f"/v1/admin/teams/{name}", json={"explicit_labels": True}, headers=admin.headers
    )
    assert marked.json() == {**updated.json(), "explicit_labels": True}

    duplicate = client.post("/v1/admin/teams", json={"name": name}, headers=admin.headers)
    assert _error(duplicate, 409)["type"] == "conflict"
    missing = client.patch("/v1/admin/teams/nope-x", json={"weight": 2}, headers=admin.headers)
    assert _error(missing, 404)["type"] == "not_found"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "slash/no"}, "name"),
        ({"name": "ok", "weight": 0}, "weight"),
        ({"name": "ok", "weight": 10_000}, "weight"),
        ({"name": "ok", "weight": None}, "weight"),
        ({"name": "ok", "max_queued": -1}, "max_queued"),
        ({"name": "ok", "max_running": 2**31}, "max_running"),
        ({"name": "ok", "rate_per_s": -0.5}, "rate_per_s"),
        ({"name": "ok", "rate_per_s": "fast"}, "rate_per_s"),
        ({"name": "ok", "colour": "red"}, "colour"),
        ({"name": "ok", "explicit_labels": None}, "explicit_labels"),
        ({"name": "ok", "explicit_labels": "maybe"}, "explicit_labels"),
    ],
)
def test_bad_team_fields_are_named(
    client: TestClient, admin: TeamKey, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/admin/teams", json=body, headers=admin.headers)
    error = _error(response, 422)
    assert [e["field"] for e in error["errors"]] == [field]
    names = [t["name"] for t in client.get("/v1/admin/teams", headers=admin.headers).json()["data"]]
    assert "ok" not in names


def test_bad_update_fields_are_named(client: TestClient, admin: TeamKey) -> None:
    for body, field in (({"weight": 0}, "weight"), ({"max_queued": 1.5}, "max_queued")):
        response = client.patch("/v1/admin/teams/alpha", json=body, headers=admin.headers)
        assert [e["field"] for e in _error(response, 422)["errors"]] == [field]
    bad_name = client.patch("/v1/admin/teams/a%20b", json={"weight": 2}, headers=admin.headers)
    assert [e["field"] for e in _error(bad_name, 422)["errors"]] == ["name"]


def test_a_new_key_is_shown_once_and_works_until_revoked(
    client: TestClient, admin: TeamKey
) -> None:
    name = _name()
    client.post("/v1/admin/teams", json={"name": name}, headers=admin.headers)
    created = client.post(
        "/v1/admin/keys", json={"team": name, "name": "cms"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith(key["prefix"] + "_")
    assert (key["team"], key["role"], key["name"]) == (name, "member", "cms")
    assert key["last_used_at"] is None and key["revoked_at"] is None

    as_new = auth_headers(key["key"])
    assert client.get("/v1/jobs", headers=as_new).status_code == 200
    assert _error(client.get("/v1/admin/teams", headers=as_new), 403)["type"] == "forbidden"

    listed = client.get("/v1/admin/keys", params={"team": name}, headers=admin.headers)
    assert listed.status_code == 200
    [shown] = listed.json()["data"]
    assert shown["prefix"] == key["prefix"] and shown["last_used_at"] is not None
    assert "key" not in shown and key["key"] not in listed.text
    everyone = client.get("/v1/admin/keys", headers=admin.headers)
    assert {admin.prefix, key["prefix"]} <= {k["prefix"] for k in everyone.json()["data"]}
    assert key["key"] not in everyone.text and "sha256" not in everyone.text

    revoked = client.post(f"/v1/admin/keys/{key['prefix']}/revoke", headers=admin.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None and "key" not in revoked.json()
    assert _error(client.get("/v1/jobs", headers=as_new), 401)["type"] == "unauthorized"
    again = client.post(f"/v1/admin/keys/{key['prefix']}/revoke", headers=admin.headers)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


def test_admin_keys_made_over_http_are_admins(client: TestClient, admin: TeamKey) -> None:
    created = client.post(
        "/v1/admin/keys", json={"team": "operators", "role": "admin"}, headers=admin.headers
    ).json()
    headers = auth_headers(created["key"])
    assert client.get("/v1/admin/teams", headers=headers).status_code == 200
    client.post(f"/v1/admin/keys/{created['prefix']}/revoke", headers=admin.headers)


def test_key_errors(client: TestClient, admin: TeamKey) -> None:
    unknown_team = client.post("/v1/admin/keys", json={"team": "nope-x"}, headers=admin.headers)
    assert _error(unknown_team, 404)["type"] == "not_found"
    for body, field in (
        ({"team": "alpha", "role": "owner"}, "role"),
        ({"team": "alpha", "name": "n" * 129}, "name"),
        ({"role": "member"}, "team"),
    ):
        response = client.post("/v1/admin/keys", json=body, headers=admin.headers)
        assert [e["field"] for e in _error(response, 422)["errors"]] == [field]
    unknown = client.post("/v1/admin/keys/aigc_00000000/revoke", headers=admin.headers)
    assert _error(unknown, 404)["type"] == "not_found"
    malformed = client.post("/v1/admin/keys/not-a-prefix/revoke", headers=admin.headers)
    assert [e["field"] for e in _error(malformed, 422)["errors"]] == ["prefix"]
    no_team = client.get("/v1/admin/keys", params={"team": "nope-x"}, headers=admin.headers)
    assert _error(no_team, 404)["type"] == "not_found"
