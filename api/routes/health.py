"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from api.deps import BrokerClientDep, SessionDep, StoreDep
from api.schemas import Health
from db.session import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get(
    "/readyz", response_model=None, responses={200: {"model": Health}, 503: {"model": Health}}
)
def readyz(session: SessionDep, broker: BrokerClientDep, store: StoreDep) -> Health | JSONResponse:
    """The database and the broker are reachable and the artifact store takes a write, a
    read and a delete; 503 names the one that does not."""
    checks: dict[str, str] = {}
    try:
        ping(session)
        checks["database"] = "ok"
    except SQLAlchemyError as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        broker.ping()
        checks["broker"] = "ok"
    except (RedisError, OSError) as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    try:
        store.check()
        checks["store"] = "ok"
    except OSError as exc:
        # The location names the store; the error's text carries no credentials.
        checks["store"] = f"unavailable: {store.location}: {type(exc.__cause__ or exc).__name__}"
    if all(value == "ok" for value in checks.values()):
        return Health(status="ok", checks=checks)
    return JSONResponse(Health(status="unavailable", checks=checks).model_dump(), status_code=503)
