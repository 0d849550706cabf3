from __future__ import annotations

import subprocess
import sys

import pytest

from aigc.catalog import UnknownModel, build_catalog
from aigc.ids import uuid7
from aigc.settings import Settings


def test_ids_are_time_sortable_uuid7() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert all(i.version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_database_url_spellings_are_normalised_to_psycopg() -> None:
    settings = Settings(database_url="postgres://u:p@h:5432/d")
    assert settings.database_url == "postgresql+psycopg://u:p@h:5432/d"


def test_settings_come_from_aigc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGC_PROFILE", "hub")
    monkeypatch.setenv("AIGC_TEXT_MODEL", "Qwen/Qwen2.5-1.5B-Instruct")
    catalog = build_catalog(Settings())
    assert catalog.defaults == {
        "text": "Qwen/Qwen2.5-1.5B-Instruct",
        "image": "stabilityai/sd-turbo",
        "audio": "facebook/mms-tts-eng",
    }
    assert catalog.resolve("text", None).source == "Qwen/Qwen2.5-1.5B-Instruct"


def test_offline_catalog_offers_local_models_only() -> None:
    catalog = build_catalog(Settings(profile="offline"))
    assert catalog.defaults == {"text": "tiny-text", "image": "tiny-image", "audio": "tiny-audio"}
    with pytest.raises(UnknownModel, match="available: echo, tiny-text"):
        catalog.resolve("text", "Qwen/Qwen2.5-0.5B-Instruct")


def test_api_never_imports_torch() -> None:
    code = (
        "import sys; import api.main, aigc.cli.main, workers.celery_app, workers.dispatch; "
        "api.main.create_app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
