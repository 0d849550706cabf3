from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey


@pytest.fixture
def client(settings: Settings, team: TeamKey) -> Iterator[TestClient]:
    """The API in-process over ASGI, on the real PostgreSQL and Redis, calling as `team`."""
    with TestClient(create_app(settings), headers=team.headers) as test_client:
        yield test_client


@pytest.fixture
def app_client(team: TeamKey) -> Callable[[Settings], TestClient]:
    """A client (to use as a context manager) of an app built from other settings, calling
    as `team`."""

    def make(settings: Settings) -> TestClient:
        return TestClient(create_app(settings), headers=team.headers)

    return make
