"""A model's revision as provenance names it: the sha256 of its weights files as the worker
loaded them, so two deployments (or two loads) that name the same model with different
weights say so. Plain files only; no torch."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from models.loading import looks_like_path

log = logging.getLogger(__name__)

# What holds weights in the formats transformers, diffusers and ONNX runtimes load.
# Configs and tokenizers shape the output too, but a revision that changes with a README
# edit would be noise; the weights are what a changed model means.
WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".gguf"})
READ_CHUNK_BYTES = 8 * 1024 * 1024  # a few reads a gigabyte, little memory


def weights_sha256(folder: Path) -> str:
    """sha256 (hex) over the bytes of the folder's weight files (its subfolders too, as a
    diffusers pipeline keeps them), one after another in order of their relative POSIX
    paths; "" when it holds none. Symbolic links (a hub cache snapshot's) are followed."""
    files = sorted(
        (path.relative_to(folder).as_posix(), path)
        for path in folder.rglob("*")
        if path.suffix in WEIGHT_SUFFIXES and path.is_file()
    )
    if not files:
        return ""
    digest = hashlib.sha256()
    for _, path in files:
        with path.open("rb") as weights:
            while chunk := weights.read(READ_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def model_revision(source: str) -> str:
    """The revision of the model `from_pretrained(source)` loads: the weights' sha256 of a
    local folder, or of the hub cache's snapshot folder for a hub id (the one
    `from_pretrained` reads). For a hub snapshot without weight files there, the snapshot's
    commit hash (the folder's name); "" when there is nothing to hash (no source: a model
    without weights)."""
    if not source:
        return ""
    if looks_like_path(source):
        return weights_sha256(Path(source).expanduser())
    snapshot = _hub_snapshot(source)
    if snapshot is None:
        return ""
    return weights_sha256(snapshot) or snapshot.name


def _hub_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of the hub repo's default revision, without the network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as exc:  # not cached the way the hub client lays it out
        log.warning("no hub cache snapshot of %s to hash: %s", repo_id, exc)
        return None
