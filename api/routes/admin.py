"""Teams and API keys over HTTP, for admin keys: what `aigc teams` and `aigc keys` do on a
host with database access."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aigc.apikeys import PREFIX_HEX_CHARS, SCHEME
from aigc.errors import Conflict, NotFound
from api.auth import AdminDep, require_admin
from api.deps import SessionDep
from api.schemas import (
    MAX_TEAM_NAME_CHARS,
    TEAM_NAME_PATTERN,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyPublic,
    TeamCreate,
    TeamLimits,
    TeamList,
    TeamPublic,
)
from api.validation import StrictJsonRoute
from db import teams as team_queries
from db.tables import ApiKey, Team

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    route_class=StrictJsonRoute,
    dependencies=[Depends(require_admin)],
)

log = logging.getLogger(__name__)

TeamPath = Annotated[
    str, Path(min_length=1, max_length=MAX_TEAM_NAME_CHARS, pattern=TEAM_NAME_PATTERN)
]
TeamQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_TEAM_NAME_CHARS,
        pattern=TEAM_NAME_PATTERN,
        description="Only this team's keys.",
    ),
]
KeyPrefix = Annotated[
    str,
    Path(
        pattern=rf"^{SCHEME}_[0-9a-f]{{{PREFIX_HEX_CHARS}}}$",
        description="The key's prefix, as lists show it.",
        examples=["aigc_1f2e3d4c"],
    ),
]
CONFLICT_RESPONSE: dict[int | str, dict[str, Any]] = {
    409: {"description": "A team of that name exists"}
}
NO_TEAM_RESPONSE: dict[int | str, dict[str, Any]] = {404: {"description": "No such team"}}


def team_public(team: Team) -> TeamPublic:
    return TeamPublic.model_validate(team, from_attributes=True)


def key_public(key: ApiKey) -> KeyPublic:
    return KeyPublic(
        prefix=key.prefix,
        team=key.team.name,
        role=key.role,
        name=key.name,
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def _team(session: Session, name: str) -> Team:
    team = team_queries.get_team(session, name)
    if team is None:
        raise NotFound("team", name)
    return team


@router.post("/teams", status_code=201, response_model=TeamPublic, responses=CONFLICT_RESPONSE)
def create_team(body: TeamCreate, session: SessionDep) -> TeamPublic:
    """Create a team; a name in use answers 409."""
    try:
        team = team_queries.create_team(session, **body.model_dump())
        session.commit()
    except IntegrityError as exc:
        session.rollback()  # the name is unique: it is in use
        raise Conflict(f"team {body.name} already exists") from exc
    return team_public(team)


@router.get("/teams", response_model=TeamList)
def list_teams(session: SessionDep) -> TeamList:
    """Every team with its share and limits, by name."""
    return TeamList(data=[team_public(team) for team in team_queries.list_teams(session)])


@router.patch("/teams/{name}", response_model=TeamPublic)
def update_team(name: TeamPath, body: TeamLimits, session: SessionDep) -> TeamPublic:
    """Change a team's share or limits: fields left out stay, a null limit is lifted."""
    team = team_queries.update_team(
        session, _team(session, name), **body.model_dump(include=body.model_fields_set)
    )
    session.commit()
    return team_public(team)


@router.post("/keys", status_code=201, response_model=KeyCreated, responses=NO_TEAM_RESPONSE)
def create_key(body: KeyCreate, session: SessionDep, caller: AdminDep) -> KeyCreated:
    """A new key for a team. The answer holds the key itself, once: only its SHA-256 is
    stored, and lists show its prefix."""
    key, new = team_queries.create_key(
        session, team=_team(session, body.team), role=body.role, name=body.name
    )
    session.commit()
    # The prefix only: a key is never logged.
    log.info(
        "key %s (%s) of team %s created by %s", key.prefix, key.role, body.team, caller.key_prefix
    )
    return KeyCreated(**key_public(key).model_dump(), key=new.key)


@router.get("/keys", response_model=KeyList, responses=NO_TEAM_RESPONSE)
def list_keys(
    session: SessionDep,
    team: TeamQuery = None,
) -> KeyList:
    """Keys, oldest first, live and revoked: prefixes, never the keys."""
    found = team_queries.list_keys(session, team=_team(session, team) if team else None)
    return KeyList(data=[key_public(key) for key in found])


@router.post("/keys/{prefix}/revoke", response_model=KeyPublic)
def revoke_key(prefix: KeyPrefix, session: SessionDep) -> KeyPublic:
    """Revoke a key: from now on it answers 401. Revoking it again changes nothing."""
    key = team_queries.get_key(session, prefix)
    if key is None:
        raise NotFound("key", prefix)
    team_queries.revoke_key(session, prefix)
    session.commit()
    session.refresh(key)
    return key_public(key)
