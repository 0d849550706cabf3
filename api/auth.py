"""Who is calling: every route but health needs `Authorization: Bearer <key>`. A valid key
scopes the request's database session to its team (db.scope), so another team's rows are
not there; an admin key's session sees every team."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from aigc.apikeys import looks_like_key
from aigc.errors import Forbidden, Unauthorized
from api.deps import get_session
from db import teams as team_queries
from db.scope import scope_to_team
from db.teams import KeyOwner

# Documents the scheme in OpenAPI; the check below answers every failure the same way.
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


# The caller is the key's owner: its team, key prefix, role and the team's limits.
Caller = KeyOwner


def authenticate(
    session: Annotated[Session, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller's key, checked; 401 for a missing, malformed, unknown or revoked one,
    all alike."""
    key = credentials.credentials.strip() if credentials else ""
    if not looks_like_key(key):
        raise Unauthorized()
    owner = team_queries.key_owner(session, key)
    if owner is None:
        raise Unauthorized()
    if not owner.is_admin:
        scope_to_team(session, owner.team_id)
    return owner


def require_admin(caller: Annotated[Caller, Depends(authenticate)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this route needs an admin key")
    return caller


CallerDep = Annotated[Caller, Depends(authenticate)]
AdminDep = Annotated[Caller, Depends(require_admin)]
# The Authorization header, unchecked: for the one route that accepts another proof (a
# signed artifact URL) and calls `authenticate` itself only when that proof is absent.
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
