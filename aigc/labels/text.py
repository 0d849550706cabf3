"""Text keeps its bytes: its label is a sidecar JSON object stored next to it (the artifact's
storage key + SIDECAR_SUFFIX) and shown in the job response."""

from __future__ import annotations

from aigc.labels.label import Label

SIDECAR_SUFFIX = ".label.json"
TEXT_EXTENSION = ".txt"


def sidecar_key(storage_key: str) -> str:
    return storage_key + SIDECAR_SUFFIX


def sidecar_keys(storage_keys: list[str]) -> list[str]:
    """The sidecars among these artifacts' keys: text artifacts have one."""
    return [sidecar_key(key) for key in storage_keys if key.endswith(TEXT_EXTENSION)]


def read_sidecar(sidecar: bytes) -> Label:
    """MalformedLabel where the sidecar is not a label."""
    return Label.from_json(sidecar)
