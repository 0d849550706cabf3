"""Moderation rules over HTTP, and the jobs they refused: for admin keys. A rule applies
to one team or, without a team, to every team; a change reaches the dispatcher's and the
workers' compiled rules at their next check (a version the database moves with it)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from aigc.errors import InvalidRequest, NotFound
from aigc.moderation import InvalidRule, parse_rule
from aigc.vocab import JobStatus
from api.auth import AdminDep, require_admin
from api.deps import SessionDep
from api.schemas import (
    MAX_TEAM_NAME_CHARS,
    TEAM_NAME_PATTERN,
    BlockedJob,
    BlockedJobList,
    JobModeration,
    RuleCreate,
    RuleList,
    RulePublic,
)
from api.validation import StrictJsonRoute
from db import audit
from db import moderation as moderation_queries
from db import teams as team_queries
from db.tables import Job, ModerationRule, Team

router = APIRouter(route_class=StrictJsonRoute, dependencies=[Depends(require_admin)])
RULES = "/v1/moderation/rules"

MAX_PAGE_SIZE = 200
NO_TEAM_RESPONSE: dict[int | str, dict[str, Any]] = {404: {"description": "No such team"}}
TeamQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_TEAM_NAME_CHARS,
        pattern=TEAM_NAME_PATTERN,
        description="A team's name; omitted: the global rules (or, for blocked jobs, every team).",
    ),
]


def _team_id(session: Session, name: str | None, *, field: str) -> uuid.UUID | None:
    if name is None:
        return None
    team = team_queries.get_team(session, name)
    if team is None:
        raise NotFound("team", name, field=field)
    return team.id


def rule_public(rule: ModerationRule, team: str | None) -> RulePublic:
    return RulePublic(
        id=rule.id,
        team=team,
        name=rule.name,
        kind=rule.kind,
        terms=rule.terms,
        pattern=rule.pattern,
        reason_code=rule.reason_code,
        enabled=rule.enabled,
        created_by=rule.created_by,
        created_at=rule.created_at,
    )


@router.post(
    RULES,
    tags=["moderation"],
    status_code=201,
    response_model=RulePublic,
    responses=NO_TEAM_RESPONSE,
)
def create_rule(body: RuleCreate, session: SessionDep, caller: AdminDep) -> RulePublic:
    """Add a rule; it applies to jobs still waiting as well as new ones."""
    try:
        rule = parse_rule(body.model_dump())
    except InvalidRule as exc:
        raise InvalidRequest.for_field(exc.field, exc.message) from exc
    if body.kind == "terms" and body.pattern is not None:
        raise InvalidRequest.for_field("pattern", "only for kind regex")
    if body.kind == "regex" and body.terms is not None:
        raise InvalidRequest.for_field("terms", "only for kind terms")
    team_id = _team_id(session, body.team, field="team")
    row = ModerationRule(
        team_id=team_id,
        name=rule.name,
        kind=str(rule.kind),
        # Stored as given (bounded above); matching normalises them again when compiling.
        terms=body.terms,
        pattern=rule.pattern,
        reason_code=rule.reason_code,
        enabled=body.enabled,
        created_by=caller.key_prefix,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.RULE_CREATED,
        target_type="rule",
        target_id=row.id,
        team_id=team_id,
        # The rule's identity, not its terms: the log is read more widely than the rules.
        details={"name": rule.name, "kind": str(rule.kind), "reason_code": rule.reason_code},
    )
    session.commit()
    return rule_public(row, body.team)


@router.get(RULES, tags=["moderation"], response_model=RuleList, responses=NO_TEAM_RESPONSE)
def list_rules(session: SessionDep, team: TeamQuery = None) -> RuleList:
    """A team's rules, or the global ones kept in the database, oldest first (the rules
    file's are not listed: they live with the deployment's configuration)."""
    team_id = _team_id(session, team, field="team")
    rows = moderation_queries.list_rules(session, team_id=team_id)
    return RuleList(data=[rule_public(row, team) for row in rows])


@router.delete(
    RULES + "/{rule_id}",
    tags=["moderation"],
    status_code=204,
    response_class=Response,
    responses={404: {"description": "No such rule"}},
)
def delete_rule(rule_id: uuid.UUID, session: SessionDep, caller: AdminDep) -> Response:
    """Remove a rule. Jobs it already blocked stay blocked."""
    row = session.get(ModerationRule, rule_id)
    if row is None:
        raise NotFound("moderation rule", rule_id)
    session.delete(row)
    audit.record(
        session,
        audit.key_actor(caller),
        audit.AuditAction.RULE_DELETED,
        target_type="rule",
        target_id=rule_id,
        team_id=row.team_id,
        details={"name": row.name, "reason_code": row.reason_code},
    )
    session.commit()
    return Response(status_code=204)


@router.get(
    "/v1/admin/blocked", tags=["admin"], response_model=BlockedJobList, responses=NO_TEAM_RESPONSE
)
def list_blocked(
    session: SessionDep,
    team: TeamQuery = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
    cursor: Annotated[uuid.UUID | None, Query(description="`next_cursor` of the last page")] = None,
) -> BlockedJobList:
    """Jobs moderation refused, newest first, with the rule and stage of each."""
    team_id = _team_id(session, team, field="team")
    query = (
        select(Job, Team.name)
        .join(Team, Team.id == Job.team_id)
        .where(Job.status == JobStatus.BLOCKED)
        .order_by(Job.id.desc())
        .limit(limit)
    )
    if team_id is not None:
        query = query.where(Job.team_id == team_id)
    if cursor is not None:
        query = query.where(Job.id < cursor)
    rows = session.execute(query).tuples().all()
    data = [
        BlockedJob(
            id=job.id,
            team=name,
            kind=job.kind,
            model=job.model,
            prompt=job.prompt,
            batch_id=job.batch_id,
            line=job.line,
            custom_id=job.custom_id,
            key_prefix=job.key_prefix,
            created_at=job.created_at,
            finished_at=job.finished_at,
            moderation=JobModeration.model_validate(job.moderation) if job.moderation else None,
        )
        for job, name in rows
    ]
    next_cursor = str(rows[-1][0].id) if len(rows) == limit else None
    return BlockedJobList(data=data, next_cursor=next_cursor)
