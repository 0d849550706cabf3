"""Turning a ModelSpec into a loaded generator (no torch until a generator module is imported)."""

from __future__ import annotations

import re
from pathlib import Path

from models.base import Generator
from models.errors import ModelLoadError
from models.registry import ModelSpec, import_generator_class

# What the Hugging Face hub accepts as a repo id: "name" or "owner/name".
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def looks_like_path(source: str) -> bool:
    return (
        source.startswith(("/", ".", "~"))
        or _HUB_ID.fullmatch(source) is None
        or Path(source).exists()
    )


def check_local_source(source: str) -> None:
    """Fail fast on a missing local model directory.

    from_pretrained takes a missing relative path for a hub id and retries the hub for
    tens of seconds before failing; a path-shaped source that isn't a directory is an error now.
    """
    if looks_like_path(source) and not Path(source).is_dir():
        raise ModelLoadError(f"model directory {source!r} does not exist")


def load_generator(spec: ModelSpec, model_dir: Path, device: str | None = None) -> Generator:
    """Build the spec's generator and load its weights; tiny models are built first if missing."""
    if spec.is_tiny:
        # Imported here: building needs torch, and this module must not import it.
        from models.tiny import ensure_tiny_model

        ensure_tiny_model(spec.name, model_dir)
    generator_class = import_generator_class(spec)
    generator: Generator = generator_class(spec.resolve_source(model_dir), device=device)
    generator.load()
    return generator
