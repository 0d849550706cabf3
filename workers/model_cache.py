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
from models.revision import model_revision
from workers.metrics import MODEL_LOAD_SECONDS

log = logging.getLogger(__name__)


class ModelCache:
    """At most `capacity` generators, least recently used evicted first (GPU memory is finite)."""

    def __init__(self, model_dir: Path, capacity: int) -> None:
        self.model_dir = model_dir
        self.capacity = capacity
        self._loaded: OrderedDict[str, Generator[Any]] = OrderedDict()
        # Each loaded model's weights hash (models.revision), taken once per load.
        self._revisions: dict[str, str] = {}
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
            warmed = time.perf_counter()
            MODEL_LOAD_SECONDS.labels(spec.name).observe(warmed - started)
            # Hashed after loading: the files hashed are those just read (a hub model's
            # snapshot is in the cache only once from_pretrained has fetched it).
            self._revisions[spec.name] = model_revision(spec.resolve_source(self.model_dir))
            log.info(
                "loaded model %s in %.2fs, warmed up in %.2fs, weights hashed in %.2fs",
                spec.name,
                loaded - started,
                warmed - loaded,
                time.perf_counter() - warmed,
            )
            self._loaded[spec.name] = generator
            return generator

    def revision(self, name: str) -> str:
        """The loaded model's weights hash (models.revision.model_revision); "" for a
        model not loaded or without weights."""
        return self._revisions.get(name, "")

    def _make_room(self) -> None:
        """Evict the least recently used models that hold weights until one more fits."""
        while sum(g.holds_weights for g in self._loaded.values()) >= self.capacity:
            evicted = next(name for name, g in self._loaded.items() if g.holds_weights)
            del self._loaded[evicted]
            self._revisions.pop(evicted, None)
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
