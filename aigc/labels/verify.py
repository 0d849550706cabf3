"""What a file carries: one LayerReport per kind of label. `metadata`: the signed label in
the file (aigc.labels.png / wav) or beside it (text); `c2pa`: the content credentials
manifest (aigc.content_credentials), PNG and WAV; `watermark`: the id in an image's pixels
(aigc.watermark), which survives a re-encoding (JPEG, WebP) and a resize that strip the
other two."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from PIL import Image, UnidentifiedImageError

from aigc import watermark
from aigc.content_credentials import ContentCredentials
from aigc.labels import png, text, wav
from aigc.labels.label import Label, LabelSigner, MalformedLabel

TEXT_TYPES = ("text/plain", "text/markdown", "application/json")
# Formats a published image may have been re-encoded into: only its watermark is left.
IMAGE_MAGIC = {"jpeg": (b"\xff\xd8\xff",), "webp": (b"RIFF",)}
SIGNED_TYPES = {"png": "image/png", "wav": "audio/wav"}
# Larger images are not decoded to look for a watermark (2048 px is the largest generated).
MAX_WATERMARK_PIXELS = 4096 * 4096


class LayerStatus(StrEnum):
    VALID = "valid"  # found, and signed by this deployment's key
    INVALID = "invalid"  # found, but altered, damaged or signed under another key
    MISSING = "missing"  # none there (never written, or stripped)


class UnsupportedFormat(ValueError):
    """Neither a PNG, a WAV nor text."""


@dataclass(frozen=True)
class LayerReport:
    layer: str  # "metadata", "c2pa" or "watermark"
    status: LayerStatus
    detail: str
    label: Label | None = None
    watermark_id: int | None = None  # the watermark layer's, where one was read

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "status": str(self.status),
            "detail": self.detail,
            "label": self.label.as_dict() if self.label else None,
            "watermark_id": f"{self.watermark_id:016x}" if self.watermark_id is not None else None,
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
        """The first valid label found (the one that names the content id)."""
        return next(
            (
                layer.label
                for layer in self.layers
                if layer.label and layer.status == LayerStatus.VALID
            ),
            None,
        )

    @property
    def watermark_id(self) -> int | None:
        return next((layer.watermark_id for layer in self.layers if layer.watermark_id), None)

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
    if data.startswith(IMAGE_MAGIC["jpeg"]):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    base_type = (media_type or "").split(";")[0].strip().lower()
    if base_type in TEXT_TYPES or base_type.startswith("text/"):
        return "text"
    if filename is not None and filename.lower().endswith((".txt", ".md", ".json")):
        return "text"
    raise UnsupportedFormat(
        "not a PNG, JPEG, WebP, WAV or text file (text needs a text/* type, a .txt name or its "
        "label)"
    )


def verify(
    data: bytes,
    signer: LabelSigner,
    *,
    media_type: str | None = None,
    filename: str | None = None,
    sidecar: bytes | None = None,
    credentials: ContentCredentials | None = None,
) -> VerifyReport:
    """Check each label `data` can carry; for text, the label is `sidecar` (the
    `.label.json` stored next to it, or the label object of the job response). Without
    `credentials` the C2PA layer is not checked."""
    try:
        kind = detect_format(data, media_type, filename)
    except UnsupportedFormat:
        if sidecar is None:
            raise
        kind = "text"  # only text comes with its label apart
    layers = []
    if kind in ("png", "wav", "text"):
        layers.append(_metadata_layer(kind, data, signer, sidecar))
    if kind in SIGNED_TYPES and credentials is not None:
        layers.append(_c2pa_layer(SIGNED_TYPES[kind], data, signer, credentials))
    if kind in ("png", "jpeg", "webp"):
        layers.append(_watermark_layer(data))
    return VerifyReport(kind, layers)


def _c2pa_layer(
    mime_type: str, data: bytes, signer: LabelSigner, credentials: ContentCredentials
) -> LayerReport:
    manifest = credentials.read(data, mime_type)
    if manifest.state is None:
        return LayerReport("c2pa", LayerStatus.MISSING, "no C2PA manifest")
    label = None
    if manifest.label is not None:
        try:
            label = Label.from_dict(manifest.label)
        except MalformedLabel:
            label = None
    if manifest.state != "Trusted":
        problems = ", ".join(manifest.failures) or manifest.state
        why = (
            "the file was changed after it was signed"
            if manifest.state == "Invalid"
            else "signed by a certificate this deployment does not trust"
        )
        return LayerReport("c2pa", LayerStatus.INVALID, f"{why} ({problems})", label)
    if label is None or not signer.is_valid(label):
        return LayerReport(
            "c2pa", LayerStatus.INVALID, "the manifest's label is not this deployment's", label
        )
    who = f"{manifest.signer} ({manifest.issuer})"
    made = "AI-generated by " + (manifest.software or "a model") if manifest.ai_generated else ""
    return LayerReport("c2pa", LayerStatus.VALID, f"signed by {who}; {made}".rstrip("; "), label)


def _watermark_layer(data: bytes) -> LayerReport:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_WATERMARK_PIXELS:
                # A small file can declare a vast image (a decompression bomb).
                detail = f"not read: over {MAX_WATERMARK_PIXELS:,} pixels"
                return LayerReport("watermark", LayerStatus.MISSING, detail)
            reading = watermark.read(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # PIL reports a damaged image with any of these.
        return LayerReport("watermark", LayerStatus.INVALID, f"the image is damaged: {exc}")
    if reading.watermark_id is None:
        small = not watermark.can_carry(*image.size)
        why = "the image is too small to carry one" if small else "no watermark"
        return LayerReport("watermark", LayerStatus.MISSING, why)
    return LayerReport(
        "watermark",
        LayerStatus.VALID,
        f"watermark id {reading.watermark_id:016x} (read with clarity {reading.clarity:.2f})",
        watermark_id=reading.watermark_id,
    )


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
