"""A worker loads each model once and keeps it, within a bounded number of models: real tiny
models, so eviction is proven by what a second use loads."""

from __future__ import annotations

import weakref
from pathlib import Path

from models.registry import ECHO, TINY_AUDIO, TINY_IMAGE, TINY_TEXT
from workers.model_cache import ModelCache


def test_second_use_reuses_the_loaded_model(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=2)
    first = cache.get(TINY_TEXT)
    assert cache.get(TINY_TEXT) is first


def test_a_full_cache_evicts_its_model_and_loads_it_anew_when_asked_again(
    tiny_models: Path,
) -> None:
    cache = ModelCache(tiny_models, capacity=1)
    text = cache.get(TINY_TEXT)
    text_ref = weakref.ref(text)
    del text
    assert TINY_TEXT.name in cache
    audio = cache.get(TINY_AUDIO)
    # The text model made room for the audio model: gone from the cache and, nothing else
    # holding it, freed (its weights with it).
    assert TINY_TEXT.name not in cache and TINY_AUDIO.name in cache
    assert text_ref() is None
    assert cache.get(TINY_TEXT).source == TINY_TEXT.resolve_source(tiny_models)  # loaded anew
    assert TINY_TEXT.name in cache and TINY_AUDIO.name not in cache
    assert cache.get(TINY_AUDIO) is not audio  # evicted in turn: loaded anew


def test_least_recently_used_model_is_evicted(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=2)
    text = cache.get(TINY_TEXT)
    audio = cache.get(TINY_AUDIO)
    cache.get(TINY_TEXT)  # text is now the most recently used
    cache.get(TINY_IMAGE)
    assert TINY_TEXT.name in cache and TINY_IMAGE.name in cache
    assert TINY_AUDIO.name not in cache
    assert cache.get(TINY_TEXT) is text
    assert cache.get(TINY_AUDIO) is not audio  # evicted, so loaded anew


def test_echo_holds_no_weights_and_takes_no_room(tiny_models: Path) -> None:
    cache = ModelCache(tiny_models, capacity=1)
    text = cache.get(TINY_TEXT)
    cache.get(ECHO)
    assert TINY_TEXT.name in cache and ECHO.name in cache
    assert cache.get(TINY_TEXT) is text
