"""Queries on teams and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, joinedload

from aigc.apikeys import NewKey, key_sha256, new_key
from aigc.vocab import Role
from db.intervals import seconds_ago
from db.session import affected_rows
from db.tables import ApiKey, Team

DEFAULT_TEAM = "default"
# last_used_at is written at most this often per key: an authenticated request costs no
# write in the common case.
LAST_USED_RESOLUTION_S = 60


@dataclass(frozen=True)
class TeamLimits:
    """A team's limits checked at submission; None is unlimited."""

    max_queued: int | None
    rate_per_s: float | None


@dataclass(frozen=True)
class KeyOwner:
    """Who a valid key speaks for, with the team's limits as of this request (read with
    the key: a submission needs no second query to know whether it is limited)."""

    team_id: uuid.UUID
    team_name: str
    key_prefix: str
    role: Role
    limits: TeamLimits

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def team_limits(session: Session, *, team_id: uuid.UUID, lock: bool = False) -> TeamLimits:
    """The team's submission limits. `lock` holds the team row until the transaction ends
    (FOR NO KEY UPDATE: concurrent submissions of the team wait, while the foreign-key
    checks of inserts into other tables, which take KEY SHARE, do not)."""
    query = select(Team.max_queued, Team.rate_per_s).where(Team.id == team_id)
    if lock:
        query = query.with_for_update(key_share=True)
    max_queued, rate_per_s = session.execute(query).one()
    return TeamLimits(max_queued=max_queued, rate_per_s=rate_per_s)


def create_team(session: Session, *, name: str, **limits: Any) -> Team:
    team = Team(name=name, **limits)
    session.add(team)
    session.flush()
    return team


def get_team(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.name == name))


def list_teams(session: Session) -> Sequence[Team]:
    return session.scalars(select(Team).order_by(Team.name)).all()


def update_team(session: Session, team: Team, **changes: Any) -> Team:
    for field, value in changes.items():
        setattr(team, field, value)
    session.flush()
    return team


def create_key(
    session: Session, *, team: Team, role: Role = Role.MEMBER, name: str = ""
) -> tuple[ApiKey, NewKey]:
    """A new key for the team; the secret is in the NewKey alone, never stored."""
    new = new_key()
    row = ApiKey(team_id=team.id, prefix=new.prefix, sha256=new.sha256, role=role, name=name)
    session.add(row)
    session.flush()
    return row, new


def get_key(session: Session, prefix: str) -> ApiKey | None:
    """The key with this prefix (live or revoked), its team loaded."""
    return session.scalar(
        select(ApiKey).options(joinedload(ApiKey.team)).where(ApiKey.prefix == prefix)
    )


def list_keys(session: Session, *, team: Team | None = None) -> Sequence[ApiKey]:
    """Keys, oldest first, their teams loaded."""
    query = select(ApiKey).options(joinedload(ApiKey.team)).order_by(ApiKey.created_at)
    if team is not None:
        query = query.where(ApiKey.team_id == team.id)
    return session.scalars(query).all()


def revoke_key(session: Session, prefix: str) -> bool:
    """Revoke the key with this prefix; False when there is none or it was revoked."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return affected_rows(result) == 1


def key_owner(session: Session, key: str) -> KeyOwner | None:
    """The team and role of a live key, None for an unknown or revoked one. Marks the key
    used (at most once a minute): one query in the common case, a write only when stale."""
    stale = or_(
        ApiKey.last_used_at.is_(None),
        ApiKey.last_used_at < seconds_ago(LAST_USED_RESOLUTION_S),
    )
    found = session.execute(
        select(
            ApiKey.id,
            ApiKey.team_id,
            Team.name,
            ApiKey.prefix,
            ApiKey.role,
            Team.max_queued,
            Team.rate_per_s,
            stale,
        )
        .join(Team, Team.id == ApiKey.team_id)
        .where(ApiKey.sha256 == key_sha256(key), ApiKey.revoked_at.is_(None))
    ).first()
    if found is None:
        return None
    key_id, team_id, team_name, prefix, role, max_queued, rate_per_s, is_stale = found
    if is_stale:
        touched = session.execute(
            update(ApiKey).where(ApiKey.id == key_id, stale).values(last_used_at=func.now())
        )
        if affected_rows(touched):
            session.commit()
    return KeyOwner(
        team_id=team_id,
        team_name=team_name,
        key_prefix=prefix,
        role=Role(role),
        limits=TeamLimits(max_queued=max_queued, rate_per_s=rate_per_s),
    )
