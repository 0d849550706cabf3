"""Loaded generators kept per process, so a model is loaded (and warmed up) once and reused."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from models.base import Generator
from models.errors import ModelLoadError
from models.loading import load_generator
from models.registry import ModelSpec, import_generator_class
from workers.metrics import MODEL_LOAD_SECONDS

log = logging.getLogger(__name__)


class ModelCache:
    """At most `capacity` generators, least recently used evicted first (GPU memory is finite)."""

    def __init__(self, model_dir: Path, capacity: int) -> None:
        self.model_dir = model_dir
        self.capacity = capacity
        self._loaded: OrderedDict[str, Generator[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: ModelSpec) -> Generator[Any]:
        with self._lock:
            generator = self._loaded.get(spec.name)
            if generator is not None:
                self._loaded.move_to_end(spec.name)
                return generator
            # Room first: the evicted model's memory is free before the new one loads.
            if import_generator_class(spec).holds_weights:
                self._make_room()
            started = time.perf_counter()
            generator = load_generator(spec, self.model_dir)
            loaded = time.perf_counter()
            _warm_up(spec, generator)
            MODEL_LOAD_SECONDS.labels(spec.name).observe(time.perf_counter() - started)
            log.info(
                "loaded model %s in %.2fs, warmed up in %.2fs",
                spec.name,
                loaded - started,
                time.perf_counter() - loaded,
            )
            self._loaded[spec.name] = generator
            return generator

    def _make_room(self) -> None:
        """Evict the least recently used models that hold weights until one more fits."""
        while sum(g.holds_weights for g in self._loaded.values()) >= self.capacity:
            evicted = next(name for name, g in self._loaded.items() if g.holds_weights)
            del self._loaded[evicted]
            log.info("evicting model %s", evicted)
            release_device_memory()

    def __contains__(self, name: str) -> bool:
        return name in self._loaded


def _warm_up(spec: ModelSpec, generator: Generator[Any]) -> None:
    """The generator's throwaway first generation, so the first real chunk pays no lazy
    set-up (kernel selection, allocator growth). A model that cannot generate even that is
    not kept (its memory is collected with the next load's room-making): its jobs fail with
    the reason, as for a model that cannot load, and the next job tries to load it again."""
    try:
        generator.warmup()
    except Exception as exc:
        raise ModelLoadError(f"model {spec.name!r} failed its warm-up: {exc}") from exc


def release_device_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
