from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from aigc.settings import Settings
from api.main import create_app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The API in-process over ASGI, on the real PostgreSQL and Redis."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client
