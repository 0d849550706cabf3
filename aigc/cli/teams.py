"""`aigc teams` and `aigc keys`: an operator's commands on a host with database access
(AIGC_DATABASE_URL). The admin routes under /v1/admin do the same over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from aigc.cli.common import EXIT_FAILED, console, err_console
from aigc.settings import get_settings
from aigc.vocab import Role

teams_app = typer.Typer(
    help="Teams sharing the service: create, list, change their share and limits.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys: create one for a team (shown once), list them, revoke one.",
    no_args_is_help=True,
)


# The command-line spelling of each field the API names.
OPTION_OF_FIELD = {
    "name": "NAME",
    "weight": "--weight",
    "max_queued": "--max-queued",
    "max_running": "--max-running",
    "rate_per_s": "--rate",
    "artifact_retention_s": "--artifact-retention",
    "file_retention_s": "--file-retention",
    "explicit_labels": "--explicit-labels",
    "team": "--team",
    "role": "--role",
}
NO_LIMIT = "none"  # what `teams update` takes to lift a limit
# Retention options take seconds or a number with one of these units: 90d, 12h, 30m.
DURATION_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Weight = Annotated[int | None, typer.Option(help="Share of the workers against other teams.")]
MaxQueued = Annotated[
    str | None, typer.Option(help=f"Most jobs queued at once ('{NO_LIMIT}': no limit).")
]
MaxRunning = Annotated[
    str | None, typer.Option(help=f"Most jobs running at once ('{NO_LIMIT}': no limit).")
]
Rate = Annotated[
    str | None, typer.Option(help=f"Job submissions per second ('{NO_LIMIT}': no limit).")
]
ArtifactRetention = Annotated[
    str | None,
    typer.Option(
        help="How long artifacts and batch results are kept: seconds, or e.g. 30d, 12h "
        f"('{NO_LIMIT}': the deployment's default)."
    ),
]
FileRetention = Annotated[
    str | None,
    typer.Option(
        help="How long uploaded and result files are kept: seconds, or e.g. 30d, 12h "
        f"('{NO_LIMIT}': the deployment's default)."
    ),
]

ExplicitLabels = Annotated[
    bool | None,
    typer.Option(
        "--explicit-labels/--no-explicit-labels",
        help="Visible labels on the team's artifacts: a corner mark on images, a first line "
        "on text, a chime before audio (off unless given).",
        show_default=False,
    ),
]


class CommandFailed(Exception):
    """Ends the command with this one line and exit 1."""


@contextmanager
def database_session() -> Iterator[Session]:
    """A session on AIGC_DATABASE_URL, committed when the command succeeds; a missing URL,
    an unreachable database or a CommandFailed end the command with one line."""
    from aigc.connections import database_engine
    from db.session import make_session_factory

    settings = get_settings()
    try:
        engine = database_engine(settings)
    except RuntimeError as exc:  # no AIGC_DATABASE_URL
        _fail(str(exc))
    try:
        with make_session_factory(engine)() as session:
            yield session
            session.commit()
    except CommandFailed as exc:
        _fail(str(exc))
    except SQLAlchemyError as exc:
        _fail(f"database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    finally:
        engine.dispose()


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]{message}", highlight=False)
    raise typer.Exit(EXIT_FAILED)


def _validated(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    """The values checked by the API's own model; a bad one is a usage error naming the
    option."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        raise typer.BadParameter(
            error["msg"], param_hint=OPTION_OF_FIELD.get(field, field)
        ) from exc


def _limit(value: str | None, option: str) -> int | float | None:
    """An option's number, or None for 'none'."""
    if value is None or value.strip().lower() == NO_LIMIT:
        return None
    try:
        return float(value) if option == "--rate" else int(value)
    except ValueError as exc:
        kind = "a number" if option == "--rate" else "a whole number"
        raise typer.BadParameter(
            f"{value!r} is not {kind} or '{NO_LIMIT}'", param_hint=option
        ) from exc


def _duration(value: str | None, option: str) -> int | None:
    """A retention option's seconds ("3600", "90d", "12h"), or None for 'none'."""
    if value is None or value.strip().lower() == NO_LIMIT:
        return None
    text = value.strip().lower()
    unit = DURATION_UNITS_S.get(text[-1:], 0)
    number = text[:-1] if unit else text
    if not number.isdigit():
        raise typer.BadParameter(
            f"{value!r} is not a duration (seconds, or a number with s, m, h or d) or '{NO_LIMIT}'",
            param_hint=option,
        )
    return int(number) * (unit or 1)


def _limits(
    weight: int | None,
    max_queued: str | None,
    max_running: str | None,
    rate: str | None,
    artifact_retention: str | None = None,
    file_retention: str | None = None,
    explicit_labels: bool | None = None,
) -> dict[str, Any]:
    """The options given, as the fields of TeamLimits."""
    given = {
        "weight": (weight, weight),
        "max_queued": (max_queued, _limit(max_queued, "--max-queued")),
        "max_running": (max_running, _limit(max_running, "--max-running")),
        "rate_per_s": (rate, _limit(rate, "--rate")),
        "artifact_retention_s": (
            artifact_retention,
            _duration(artifact_retention, "--artifact-retention"),
        ),
        "file_retention_s": (file_retention, _duration(file_retention, "--file-retention")),
        "explicit_labels": (explicit_labels, explicit_labels),
    }
    return {field: value for field, (raw, value) in given.items() if raw is not None}


def _kept(seconds: int | None) -> str:
    """A retention as the options take it, in its largest whole unit (30d, 12h, 90s)."""
    if seconds is None:
        return "-"
    for unit, size in sorted(DURATION_UNITS_S.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _when(stamp: datetime | None) -> str:
    return stamp.strftime("%Y-%m-%d %H:%M:%S") if stamp else "-"


def _or_dash(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _teams_table(teams: list[Any]) -> Table:
    table = Table()
    table.add_column("name", no_wrap=True)
    for column in (
        "weight",
        "max queued",
        "max running",
        "rate/s",
        "artifacts kept",
        "files kept",
        "explicit labels",
        "created",
    ):
        table.add_column(column)
    for team in teams:
        table.add_row(
            team.name,
            str(team.weight),
            _or_dash(team.max_queued),
            _or_dash(team.max_running),
            _or_dash(team.rate_per_s),
            _kept(team.artifact_retention_s),
            _kept(team.file_retention_s),
            "yes" if team.explicit_labels else "no",
            _when(team.created_at),
        )
    return table


# teams -------------------------------------------------------------------------------------


@teams_app.command("create")
def teams_create(
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_' and '-'; 64 at most.")],
    weight: Weight = None,
    max_queued: MaxQueued = None,
    max_running: MaxRunning = None,
    rate: Rate = None,
    artifact_retention: ArtifactRetention = None,
    file_retention: FileRetention = None,
    explicit_labels: ExplicitLabels = None,
) -> None:
    """Create a team (weight 1, no limits, the deployment's retention and no visible labels
    unless given)."""
    from api.schemas import TeamCreate
    from db import teams as team_queries

    limits = _limits(
        weight,
        max_queued,
        max_running,
        rate,
        artifact_retention,
        file_retention,
        explicit_labels,
    )
    body = _validated(TeamCreate, {"name": name, **limits})
    with database_session() as session:
        try:
            team = team_queries.create_team(session, **body.model_dump())
        except IntegrityError as exc:
            raise CommandFailed(f"team {name} already exists") from exc
        console.print(_teams_table([team]))


@teams_app.command("list")
def teams_list() -> None:
    """Every team with its share and limits."""
    from db import teams as team_queries

    with database_session() as session:
        console.print(_teams_table(list(team_queries.list_teams(session))))


@teams_app.command("update")
def teams_update(
    name: Annotated[str, typer.Argument(help="The team.")],
    weight: Weight = None,
    max_queued: MaxQueued = None,
    max_running: MaxRunning = None,
    rate: Rate = None,
    artifact_retention: ArtifactRetention = None,
    file_retention: FileRetention = None,
    explicit_labels: ExplicitLabels = None,
) -> None:
    """Change a team's share, limits, retention or visible labels; options left out stay as
    they are, 'none' lifts a limit (or returns a retention to the deployment's default)."""
    from api.schemas import TeamLimits
    from db import teams as team_queries

    changes = _limits(
        weight,
        max_queued,
        max_running,
        rate,
        artifact_retention,
        file_retention,
        explicit_labels,
    )
    if not changes:
        raise typer.BadParameter(
            "give at least one of --weight, --max-queued, --max-running, --rate, "
            "--artifact-retention, --file-retention, --explicit-labels/--no-explicit-labels"
        )
    body = _validated(TeamLimits, changes)
    with database_session() as session:
        team = team_queries.get_team(session, name)
        if team is None:
            raise CommandFailed(f"team {name} does not exist")
        team = team_queries.update_team(session, team, **body.model_dump(include=set(changes)))
        console.print(_teams_table([team]))


# keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    team: Annotated[str, typer.Option(help="The team the key works for.", show_default=False)],
    role: Annotated[
        Role, typer.Option(help="admin: every team and these routes; member: its own team.")
    ] = Role.MEMBER,
    name: Annotated[str, typer.Option(help="A label for people (who holds it, where).")] = "",
) -> None:
    """Create a key. It is printed once, alone on the last line of stdout
    (`KEY=$(aigc keys create --team x | tail -1)`); only its hash is stored."""
    from api.schemas import KeyCreate
    from db import teams as team_queries

    _validated(KeyCreate, {"team": team, "role": role, "name": name})
    with database_session() as session:
        row = team_queries.get_team(session, team)
        if row is None:
            raise CommandFailed(f"team {team} does not exist")
        key, new = team_queries.create_key(session, team=row, role=role, name=name)
        prefix = key.prefix
    err_console.print(
        f"{role} key {prefix} of team {team} created; it is shown this once:", highlight=False
    )
    typer.echo(new.key)


@keys_app.command("list")
def keys_list(
    team: Annotated[str | None, typer.Option(help="Only this team's keys.")] = None,
) -> None:
    """Keys, oldest first: prefix, team, role, name, times (never the keys)."""
    from db import teams as team_queries

    with database_session() as session:
        row = None
        if team is not None:
            row = team_queries.get_team(session, team)
            if row is None:
                raise CommandFailed(f"team {team} does not exist")
        table = Table()
        # Identifiers stay whole on narrow terminals; the times wrap instead.
        for column in ("prefix", "team", "role", "name"):
            table.add_column(column, no_wrap=True)
        for column in ("created", "last used", "revoked"):
            table.add_column(column)
        for key in team_queries.list_keys(session, team=row):
            table.add_row(
                key.prefix,
                key.team.name,
                key.role,
                key.name or "-",
                _when(key.created_at),
                _when(key.last_used_at),
                _when(key.revoked_at),
            )
        console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as `aigc keys list` shows.")],
) -> None:
    """Revoke a key: from now on the API answers it 401."""
    from db import teams as team_queries

    with database_session() as session:
        key = team_queries.get_key(session, prefix)
        if key is None:
            raise CommandFailed(f"key {prefix} does not exist")
        if key.revoked_at is not None:
            err_console.print(f"key {prefix} was already revoked", highlight=False)
            return
        team_queries.revoke_key(session, prefix)
    err_console.print(f"key {prefix} revoked", highlight=False)
