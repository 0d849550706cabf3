"""A worker loads each model once and keeps it, within a bounded number of models."""

from __future__ import annotations

from pathlib import Path

from models.registry import ECHO, TINY_AUDIO, TINY_IMAGE, TINY_TEXT
from workers.model_cache import ModelCache


def test_second_use_reuses_the_loaded_model(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=2)
    first = cache.get(TINY_TEXT)
    assert cache.get(TINY_TEXT) is first


def test_least_recently_used_model_is_evicted(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=2)
    text = cache.get(TINY_TEXT)
    cache.get(TINY_AUDIO)
    cache.get(TINY_TEXT)  # text is now the most recently used
    cache.get(TINY_IMAGE)
    assert TINY_TEXT.name in cache and TINY_IMAGE.name in cache
    assert TINY_AUDIO.name not in cache
    assert cache.get(TINY_TEXT) is text


def test_echo_holds_no_weights_and_takes_no_room(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=1)
    cache.get(TINY_TEXT)
    cache.get(ECHO)
    assert TINY_TEXT.name in cache and ECHO.name in cache
