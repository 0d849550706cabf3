"""/readyz checks the artifact store by writing, reading back and deleting a probe: a store
that cannot take them makes it 503, naming the store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from aigc.seaweedfs import SECRET_ACCESS_KEY
from aigc.settings import Settings
from api.main import create_app


def _ready(settings: Settings) -> tuple[int, dict[str, str]]:
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    return response.status_code, response.json()["checks"]


def test_local_store_is_checked(settings: Settings) -> None:
    status, checks = _ready(settings)
    assert status == 200 and checks["store"] == "ok"
    assert not list(Path(settings.artifact_dir).glob("health/*"))  # the probe is gone


def test_unwritable_local_store_is_503(settings: Settings, tmp_path: Path) -> None:
    # A path under a plain file: no directory can be made there, even as root (which a
    # read-only mode would not stop).
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    status, checks = _ready(settings.model_copy(update={"artifact_dir": blocker / "artifacts"}))
    assert status == 503
    assert checks["store"].startswith(f"unavailable: {blocker / 'artifacts'}")
    assert checks["database"] == "ok" and checks["broker"] == "ok"


def test_s3_store_is_checked(s3_settings: Settings) -> None:
    status, checks = _ready(s3_settings)
    assert (status, checks["store"]) == (200, "ok")


@pytest.mark.timeout(30)
def test_unreachable_s3_store_is_503(s3_settings: Settings, free_port: Callable[[], int]) -> None:
    stopped = s3_settings.model_copy(
        update={"s3_endpoint_url": f"http://127.0.0.1:{free_port()}", "s3_connect_timeout_s": 0.5}
    )
    status, checks = _ready(stopped)
    assert status == 503
    assert checks["store"].startswith(f"unavailable: {s3_settings.artifact_store}: ")
    assert SECRET_ACCESS_KEY not in checks["store"]
