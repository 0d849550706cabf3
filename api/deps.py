"""FastAPI dependencies: one database session per request and the process-wide clients,
all created once in api.main.create_app and read from app.state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from redis import Redis
from sqlalchemy.orm import Session

from aigc.catalog import Catalog
from aigc.settings import Settings
from aigc.storage import ArtifactStore


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog  # type: ignore[no-any-return]


def get_store(request: Request) -> ArtifactStore:
    return request.app.state.store  # type: ignore[no-any-return]


def get_broker_client(request: Request) -> Redis:
    return request.app.state.broker_client  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]
BrokerClientDep = Annotated[Redis, Depends(get_broker_client)]
