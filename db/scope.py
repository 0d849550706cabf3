"""Team scoping in one place: a session scoped to a team sees only that team's rows.

Every ORM statement such a session runs — SELECTs, `session.get`, relationship loads and
ORM-enabled UPDATEs and DELETEs — gets `team_id = :team` on each team-owned table it touches,
so no route or query has to remember the filter. Another team's row is simply not there
(the API answers 404). Workers, the dispatcher and admin keys use unscoped sessions.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from db.tables import TeamOwned

TEAM_KEY = "aigc_team_id"


def scope_to_team(session: Session, team_id: uuid.UUID) -> None:
    session.info[TEAM_KEY] = team_id


def scoped_team(session: Session) -> uuid.UUID | None:
    """The team the session is scoped to; None for an unscoped session."""
    team_id: uuid.UUID | None = session.info.get(TEAM_KEY)
    return team_id


def scoped_like(session: Session, like: Session) -> Session:
    """`session`, scoped to the team `like` is scoped to (if any): a second session opened
    for a request (a response streamed after the request's own session closed) sees only
    what the request's does."""
    team_id = scoped_team(like)
    if team_id is not None:
        scope_to_team(session, team_id)
    return session


@event.listens_for(Session, "do_orm_execute")
def _only_the_teams_rows(state: ORMExecuteState) -> None:
    team_id = scoped_team(state.session)
    if team_id is None or state.is_column_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(TeamOwned, _owned_by(team_id), include_aliases=True)
        )


def _owned_by(team_id: uuid.UUID) -> Any:
    return lambda cls: cls.team_id == team_id
