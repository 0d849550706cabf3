"""`aigc audit` and `aigc blocked` on the test database, after a refusal by the dispatcher."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from aigc.cli.main import app
from aigc.settings import get_settings
from tests.conftest import TeamKey
from tests.moderation.conftest import Rig

runner = CliRunner()


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch, database_url: str) -> Iterator[None]:
    monkeypatch.setenv("AIGC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_blocked_and_audit_commands(operator: None, rig: Rig, team: TeamKey) -> None:
    rig.add_rule(team, name="weapons", terms=["pipe bomb"], reason_code="violence")
    (job_id,) = rig.add_batch(team, [("a pipe bomb", {})])
    rig.dispatcher.refill()

    blocked = runner.invoke(app, ["blocked", "--team", team.name, "--json"])
    assert blocked.exit_code == 0, blocked.output
    rows = [json.loads(line) for line in blocked.stdout.splitlines()]
    assert rows[0]["job_id"] == str(job_id)
    assert (rows[0]["rule"], rows[0]["reason_code"], rows[0]["stage"]) == (
        "weapons",
        "violence",
        "input",
    )
    table = runner.invoke(app, ["blocked", "--team", team.name])
    assert table.exit_code == 0 and "weapons" in table.stdout

    audit = runner.invoke(
        app, ["audit", "--team", team.name, "--action", "job.blocked", "--since", "1h", "--json"]
    )
    assert audit.exit_code == 0, audit.output
    events = [json.loads(line) for line in audit.stdout.splitlines()]
    assert events[0]["target_id"] == str(job_id) and events[0]["actor_role"] == "system"
    assert events[0]["team"] == team.name and events[0]["details"]["rule"] == "weapons"

    for args, option in (
        (["audit", "--action", "job.deleted"], "--action"),
        (["audit", "--since", "yesterday"], "--since"),
    ):
        bad = runner.invoke(app, args)
        assert bad.exit_code == 2 and option in bad.output
    unknown = runner.invoke(app, ["blocked", "--team", "nobody"])
    assert unknown.exit_code == 1 and "no team named nobody" in unknown.output
