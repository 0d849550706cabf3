"""A model's revision is the sha256 of its weights files as loaded: from a local folder,
or from the hub cache's snapshot of a hub id (laid out here as the hub client lays it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from huggingface_hub import constants

from models.revision import model_revision, weights_sha256

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _pipeline(folder: Path) -> None:
    """A diffusers-style folder: weights in subfolders, and files that are not weights."""
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "unet" / "model.safetensors").write_bytes(b"unet weights")
    (folder / "vae" / "model.bin").write_bytes(b"vae weights")
    (folder / "model_index.json").write_text("{}")
    (folder / "README.md").write_text("a model")


def test_a_local_folder_hashes_its_weights_in_path_order(tmp_path: Path) -> None:
    _pipeline(tmp_path / "model")
    expected = hashlib.sha256(b"unet weights" + b"vae weights").hexdigest()
    assert model_revision(str(tmp_path / "model")) == expected
    (tmp_path / "model" / "README.md").write_text("edited")  # not a weight: same revision
    assert weights_sha256(tmp_path / "model") == expected
    (tmp_path / "model" / "vae" / "model.bin").write_bytes(b"other weights")
    assert weights_sha256(tmp_path / "model") != expected


def test_nothing_to_hash_is_empty(tmp_path: Path) -> None:
    assert model_revision("") == ""  # a model without weights (echo)
    (tmp_path / "config.json").write_text("{}")
    assert model_revision(str(tmp_path)) == ""


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hub client's cache layout for owner/model: its main ref, one snapshot whose
    files are links to blobs."""
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--owner--model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    (repo / "blobs").mkdir()
    (repo / "blobs" / "b1").write_bytes(b"hub weights")
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(repo / "blobs" / "b1")
    return snapshot


def test_a_hub_id_hashes_its_cached_snapshot(hub_cache: Path) -> None:
    assert model_revision("owner/model") == hashlib.sha256(b"hub weights").hexdigest()


def test_a_hub_snapshot_without_weights_is_its_commit(hub_cache: Path) -> None:
    (hub_cache / "model.safetensors").unlink()
    assert model_revision("owner/model") == COMMIT


def test_a_hub_id_not_in_the_cache_is_empty(hub_cache: Path) -> None:
    assert model_revision("owner/absent") == ""
