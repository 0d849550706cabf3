"""The model cache warms each generator up once after loading it, and keeps none that
cannot warm up (generators faked: loading is patched out)."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.errors import ModelLoadError
from models.params import Kind
from models.registry import ECHO, ModelSpec
from tests.unit.fakes import FakeGenerator
from workers import model_cache
from workers.model_cache import ModelCache

# A model with weights whose generator class is the fake: nothing imports torch.
FAKE = ModelSpec(name="fake", kind=Kind.TEXT, generator="tests.unit.fakes:FakeGenerator")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[FakeGenerator]:
    """Every generator the cache loads, in order."""
    loaded: list[FakeGenerator] = []

    def load(spec: ModelSpec, model_dir: Path) -> FakeGenerator:
        loaded.append(FakeGenerator())
        return loaded[-1]

    monkeypatch.setattr(model_cache, "load_generator", load)
    return loaded


def test_a_model_is_warmed_up_once_after_loading(loads: list[FakeGenerator]) -> None:
    cache = ModelCache(Path("unused"), capacity=2)
    generator = cache.get(FAKE)
    assert cache.get(FAKE) is generator
    assert [g.warmups for g in loads] == [1]


def test_a_model_that_fails_its_warm_up_is_not_kept(
    loads: list[FakeGenerator], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeGenerator, "warmup", lambda self: 1 / 0)
    cache = ModelCache(Path("unused"), capacity=2)
    with pytest.raises(ModelLoadError, match="warm-up.*division by zero") as failure:
        cache.get(FAKE)
    assert failure.value.code == "model_load_failed"  # what its jobs record
    assert FAKE.name not in cache
    with pytest.raises(ModelLoadError):
        cache.get(FAKE)
    assert len(loads) == 2  # the next job tries again


def test_capacity_counts_models_that_hold_weights(loads: list[FakeGenerator]) -> None:
    cache = ModelCache(Path("unused"), capacity=1)
    cache.get(FAKE)
    cache.get(ECHO)  # holds no weights: evicts nothing
    assert FAKE.name in cache and ECHO.name in cache
