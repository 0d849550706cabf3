"""Labelling a job's outputs at store time: each gets its id here (the label's content id),
an optional visible mark, an invisible watermark carrying the id (images large enough to
hold it), its signed implicit label (inside PNG and WAV bytes, in a sidecar next to text)
and, last, a C2PA manifest (PNG and WAV), which hashes everything before it. The sha256
and size recorded describe the labelled bytes."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, replace

from PIL import Image

from aigc import watermark
from aigc.content_credentials import ContentCredentials
from aigc.ids import uuid7_many
from aigc.labels import png, wav
from aigc.labels.label import LabelSigner
from db.jobs import ClaimedJob
from models.base import Artifact
from workers import explicit_labels


@dataclass(frozen=True)
class Labelled:
    id: uuid.UUID
    artifact: Artifact  # with its label (and mark) in the bytes where the format has room
    sidecar: bytes | None  # the label, for text


def label_outputs(
    signer: LabelSigner,
    job: ClaimedJob,
    outputs: list[Artifact],
    *,
    model_revision: str,
    explicit: bool,
    credentials: ContentCredentials | None = None,
) -> list[Labelled]:
    """`model_revision` is the loaded model's weights hash (workers.model_cache), the one
    its jobs record for provenance."""
    labelled = []
    for artifact_id, output in zip(uuid7_many(len(outputs)), outputs, strict=True):
        if explicit:
            output = explicit_labels.mark(output)
        label = signer.label(
            content_id=artifact_id,
            job_id=job.id,
            team_id=job.team_id,
            model=job.model,
            model_revision=model_revision,
        )
        sidecar = None
        if output.extension == "png":
            data = png.write(watermarked(output.data, artifact_id), label)
            output = replace(output, data=data)
        elif output.extension == "wav":
            output = replace(output, data=wav.write(output.data, label))
        else:
            sidecar = label.to_json()
        if credentials is not None and sidecar is None:
            signed = credentials.sign(
                output.data, output.mime_type, model=job.model, label=label.as_dict()
            )
            output = replace(output, data=signed)
        labelled.append(Labelled(artifact_id, output, sidecar))
    return labelled


def watermarked(png_data: bytes, artifact_id: uuid.UUID) -> bytes:
    """The PNG re-encoded with the artifact's watermark id in its pixels; as it was when it
    is too small to carry one (the tiny models' 64 px images)."""
    image = Image.open(io.BytesIO(png_data))
    if not watermark.can_carry(*image.size):
        return png_data
    marked = watermark.embed(image, watermark.watermark_id_of(artifact_id.bytes))
    out = io.BytesIO()
    marked.save(out, "PNG")
    return out.getvalue()
