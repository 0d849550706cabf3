"""The SDK against the real stack: the e2e package's API, worker and dispatcher processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aigc.client import Client
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack, live, live_env, live_stack

__all__ = ["live", "live_env", "live_stack"]


@pytest.fixture
def client(live: LiveStack, team: TeamKey) -> Iterator[Client]:
    with Client(live.api_url, team.key) as sdk:
        yield sdk
