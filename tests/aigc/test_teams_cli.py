"""`aigc teams` and `aigc keys` on the test database, and the keys they make used against
the real API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.settings import Settings, get_settings
from api.main import create_app
from tests.conftest import auth_headers

runner = CliRunner()


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    """The commands see the test database as AIGC_DATABASE_URL."""
    monkeypatch.setenv("AIGC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _name() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_create_list_and_update_teams(operator: None) -> None:
    name = _name()
    created = runner.invoke(app, ["teams", "create", name, "--weight", "2", "--max-queued", "50"])
    assert created.exit_code == 0, created.output
    assert name in created.stdout

    listed = runner.invoke(app, ["teams", "list"])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.stdout.splitlines() if name in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:5] == [name, "2", "50", "-", "-"]

    lifted = ["--max-queued", "none", "--max-running", "3", "--rate", "1.5"]
    updated = runner.invoke(app, ["teams", "update", name, *lifted])
    assert updated.exit_code == 0, updated.output
    row = next(line for line in updated.stdout.splitlines() if name in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:5] == [name, "2", "-", "3", "1.5"]

    duplicate = runner.invoke(app, ["teams", "create", name])
    assert duplicate.exit_code == 1
    assert f"team {name} already exists" in duplicate.stderr
    unknown = runner.invoke(app, ["teams", "update", "nope-x", "--weight", "2"])
    assert unknown.exit_code == 1
    assert "team nope-x does not exist" in unknown.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["teams", "create", "has space"], "NAME"),
        (["teams", "create", "x" * 65], "NAME"),
        (["teams", "create", "ok-team", "--weight", "0"], "--weight"),
        (["teams", "create", "ok-team", "--max-queued", "-1"], "--max-queued"),
        (["teams", "create", "ok-team", "--max-running", "lots"], "--max-running"),
        (["teams", "create", "ok-team", "--rate", "-2"], "--rate"),
        (["teams", "update", "alpha", "--weight", "0"], "--weight"),
        (["keys", "create", "--team", "alpha", "--role", "owner"], "--role"),
    ],
)
def test_bad_values_name_the_option(operator: None, args: list[str], option: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert option in result.stderr
    listed = runner.invoke(app, ["teams", "list"])
    assert "ok-team" not in listed.stdout


def test_a_key_is_the_last_stdout_line_works_and_is_revoked(
    operator: None, api: TestClient
) -> None:
    name = _name()
    assert runner.invoke(app, ["teams", "create", name]).exit_code == 0
    created = runner.invoke(app, ["keys", "create", "--team", name, "--name", "cms"])
    assert created.exit_code == 0, created.output
    key = created.stdout.splitlines()[-1]
    assert created.stdout == key + "\n"  # alone: `| tail -1` gives the key
    prefix, secret = key[:13], key[14:]  # aigc_<8 hex>_<secret>
    assert prefix in created.stderr and key not in created.stderr

    assert api.get("/v1/jobs", headers=auth_headers(key)).status_code == 200

    listed = runner.invoke(app, ["keys", "list", "--team", name])
    assert listed.exit_code == 0, listed.output
    assert prefix in listed.stdout and "cms" in listed.stdout and "member" in listed.stdout
    assert key not in listed.output and secret not in listed.output
    everyone = runner.invoke(app, ["keys", "list"])
    assert prefix in everyone.stdout and key not in everyone.output

    revoked = runner.invoke(app, ["keys", "revoke", prefix])
    assert revoked.exit_code == 0, revoked.output
    response = api.get("/v1/jobs", headers=auth_headers(key))
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "unauthorized"
    again = runner.invoke(app, ["keys", "revoke", prefix])
    assert again.exit_code == 0 and "already revoked" in again.stderr


def test_admin_keys_manage_teams_over_http(operator: None, api: TestClient) -> None:
    created = runner.invoke(app, ["keys", "create", "--team", "default", "--role", "admin"])
    assert created.exit_code == 0, created.output
    headers = auth_headers(created.stdout.splitlines()[-1])
    assert api.get("/v1/admin/teams", headers=headers).status_code == 200


def test_unknown_team_or_key_is_one_line_and_exit_1(operator: None) -> None:
    for args, message in (
        (["keys", "create", "--team", "nope-x"], "team nope-x does not exist"),
        (["keys", "list", "--team", "nope-x"], "team nope-x does not exist"),
        (["keys", "revoke", "aigc_00000000"], "key aigc_00000000 does not exist"),
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert result.stderr.strip() == message
        assert result.stdout == ""


def test_without_a_database_url_the_commands_say_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIGC_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["teams", "list"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "AIGC_DATABASE_URL is not set" in result.stderr
