"""What a file carries: one LayerReport per kind of label. This module checks the metadata
layer (aigc.labels.png / wav / text); a C2PA or watermark check appends its own layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aigc.labels import png, text, wav
from aigc.labels.label import Label, LabelSigner, MalformedLabel

TEXT_TYPES = ("text/plain", "text/markdown", "application/json")


class LayerStatus(StrEnum):
    VALID = "valid"  # found, and signed by this deployment's key
    INVALID = "invalid"  # found, but altered, damaged or signed under another key
    MISSING = "missing"  # none there (never written, or stripped)


class UnsupportedFormat(ValueError):
    """Neither a PNG, a WAV nor text."""


@dataclass(frozen=True)
class LayerReport:
    layer: str  # "metadata"; later "c2pa", "watermark"
    status: LayerStatus
    detail: str
    label: Label | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "status": str(self.status),
            "detail": self.detail,
            "label": self.label.as_dict() if self.label else None,
        }


@dataclass(frozen=True)
class VerifyReport:
    format: str  # png, wav or text
    layers: list[LayerReport] = field(default_factory=list)

    @property
    def status(self) -> LayerStatus:
        """Invalid if any layer is, else valid if any is, else missing."""
        statuses = {layer.status for layer in self.layers}
        for status in (LayerStatus.INVALID, LayerStatus.VALID):
            if status in statuses:
                return status
        return LayerStatus.MISSING

    @property
    def label(self) -> Label | None:
        """The first label found (the one that names the content id)."""
        return next((layer.label for layer in self.layers if layer.label), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "status": str(self.status),
            "layers": [layer.as_dict() for layer in self.layers],
        }


def detect_format(data: bytes, media_type: str | None = None, filename: str | None = None) -> str:
    """png, wav or text: PNG and WAV by their magic bytes, text by its type or name."""
    if data.startswith(png.SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    base_type = (media_type or "").split(";")[0].strip().lower()
    if base_type in TEXT_TYPES or base_type.startswith("text/"):
        return "text"
    if filename is not None and filename.lower().endswith((".txt", ".md", ".json")):
        return "text"
    raise UnsupportedFormat(
        "not a PNG, WAV or text file (text needs a text/* type, a .txt name or its label)"
    )


def verify(
    data: bytes,
    signer: LabelSigner,
    *,
    media_type: str | None = None,
    filename: str | None = None,
    sidecar: bytes | None = None,
) -> VerifyReport:
    """Check the metadata label of `data`; for text, the label is `sidecar` (the
    `.label.json` stored next to it, or the label object of the job response)."""
    try:
        kind = detect_format(data, media_type, filename)
    except UnsupportedFormat:
        if sidecar is None:
            raise
        kind = "text"  # only text comes with its label apart
    return VerifyReport(kind, [_metadata_layer(kind, data, signer, sidecar)])


def _metadata_layer(
    kind: str, data: bytes, signer: LabelSigner, sidecar: bytes | None
) -> LayerReport:
    try:
        if kind == "png":
            label = png.read(data)
        elif kind == "wav":
            label = wav.read(data)
        else:
            label = text.read_sidecar(sidecar) if sidecar is not None else None
    except MalformedLabel as exc:
        return LayerReport("metadata", LayerStatus.INVALID, f"the label is damaged: {exc}")
    except (png.NotPng, wav.NotWav) as exc:
        return LayerReport("metadata", LayerStatus.INVALID, f"the file is damaged: {exc}")
    if label is None:
        where = "no sidecar given" if kind == "text" else f"no label in the {kind.upper()}"
        return LayerReport("metadata", LayerStatus.MISSING, where)
    if not signer.is_valid(label):
        return LayerReport(
            "metadata",
            LayerStatus.INVALID,
            "the signature does not match: the label was altered, or signed by another deployment",
            label,
        )
    return LayerReport("metadata", LayerStatus.VALID, f"signed by {label.producer}", label)
