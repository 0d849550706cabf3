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
from models.registry import ModelSpec

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
            while len(self._loaded) >= self.capacity:
                evicted, _ = self._loaded.popitem(last=False)
                log.info("evicting model %s", evicted)
                release_device_memory()
            started = time.perf_counter()
            generator = load_generator(spec, self.model_dir)
            log.info("loaded model %s in %.2fs", spec.name, time.perf_counter() - started)
            self._loaded[spec.name] = generator
            return generator

    def __contains__(self, name: str) -> bool:
        return name in self._loaded


def release_device_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
