"""`aigc audit` and `aigc blocked`: an operator's view of the audit log and of the jobs
moderation refused, on a host with database access (AIGC_DATABASE_URL). GET
/v1/admin/blocked answers the second over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from aigc.cli.common import console
from aigc.cli.teams import DURATION_UNITS_S, CommandFailed, database_session
from aigc.vocab import JobStatus

MAX_ROWS = 10_000  # one command's output: a bigger search is a SQL query's job

TeamOption = Annotated[str | None, typer.Option("--team", help="Only this team's.")]
LimitOption = Annotated[int, typer.Option(min=1, max=MAX_ROWS, help="Most rows, newest first.")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def parse_since(value: str | None) -> datetime | None:
    """An ISO 8601 time, or a duration back from now: 90s, 30m, 12h, 7d."""
    if value is None:
        return None
    text = value.strip().lower()
    unit = DURATION_UNITS_S.get(text[-1:])
    if unit and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * unit)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is neither an ISO time nor a duration like 30m, 12h or 7d",
            param_hint="--since",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _team_id(session: Any, name: str | None) -> Any:
    from db import teams as team_queries

    if name is None:
        return None
    team = team_queries.get_team(session, name)
    if team is None:
        raise CommandFailed(f"no team named {name}")
    return team.id


def audit(
    team: TeamOption = None,
    action: Annotated[
        str | None,
        typer.Option(help="Only this action: job.submitted, batch.submitted, job.blocked, ..."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this time (ISO 8601) or this long ago (30m, 7d).")
    ] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
) -> None:
    """The audit log: who submitted, what was blocked and why, who downloaded what."""
    from db.audit import AuditAction, query_events
    from db.tables import Team

    if action is not None and action not in set(AuditAction):
        raise typer.BadParameter(f"one of {', '.join(AuditAction)}", param_hint="--action")
    moment = parse_since(since)
    with database_session() as session:
        events = query_events(
            session, limit=limit, team_id=_team_id(session, team), action=action, since=moment
        )
        names = {team_id: name for team_id, name in session.execute(select(Team.id, Team.name))}
    rows: list[dict[str, Any]] = [
        {
            "id": event.id,
            "at": event.at.isoformat(),
            "team": names.get(event.team_id) if event.team_id else None,
            "key_prefix": event.key_prefix,
            "actor_role": event.actor_role,
            "action": event.action,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "details": event.details,
        }
        for event in events
    ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("at", "team", "key", "role", "action", "target", "details")
    for row in rows:
        table.add_row(
            row["at"],
            row["team"] or "",
            row["key_prefix"] or "",
            row["actor_role"],
            row["action"],
            f"{row['target_type'] or ''} {row['target_id'] or ''}".strip(),
            json.dumps(row["details"], ensure_ascii=False),
        )
    console.print(table)


def blocked(team: TeamOption = None, limit: LimitOption = 50, as_json: JsonOption = False) -> None:
    """Jobs moderation refused, newest first, with the rule and stage of each."""
    from db.tables import Job, Team

    with database_session() as session:
        query = (
            select(Job, Team.name)
            .join(Team, Team.id == Job.team_id)
            .where(Job.status == JobStatus.BLOCKED)
            .order_by(Job.id.desc())
            .limit(limit)
        )
        team_id = _team_id(session, team)
        if team_id is not None:
            query = query.where(Job.team_id == team_id)
        found = session.execute(query).tuples().all()
    rows: list[dict[str, Any]] = [
        {
            "job_id": str(job.id),
            "team": name,
            "batch_id": str(job.batch_id) if job.batch_id else None,
            "line": job.line,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            **(job.moderation or {}),
        }
        for job, name in found
    ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table("job", "team", "batch", "line", "rule", "reason", "stage", "finished")
    for row in rows:
        table.add_row(
            row["job_id"],
            row["team"],
            row["batch_id"] or "",
            "" if row["line"] is None else str(row["line"]),
            row.get("rule", ""),
            row.get("reason_code", ""),
            row.get("stage", ""),
            row["finished_at"] or "",
        )
    console.print(table)
