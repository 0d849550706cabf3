"""Loaded generators kept per process, so a model is loaded once and reused."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections import OrderedDict
from pathlib import Path

from models.base import Generator
from models.loading import load_generator
from models.registry import ModelSpec, import_generator_class

log = logging.getLogger(__name__)


class ModelCache:
    """At most `capacity` generators, least recently used evicted first (GPU memory is finite)."""

    def __init__(self, model_dir: Path, capacity: int) -> None:
        self.model_dir = model_dir
        self.capacity = capacity
        self._loaded: OrderedDict[str, Generator] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: ModelSpec) -> Generator:
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
            log.info("loaded model %s in %.2fs", spec.name, time.perf_counter() - started)
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


def release_device_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
