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
        if explicit and output.extension != "png":
            output = explicit_labels.mark(output)  # an image's is drawn with its watermark
        label = signer.label(
            content_id=artifact_id,
            job_id=job.id,
            team_id=job.team_id,
            model=job.model,
            model_revision=model_revision,
        )
        sidecar = None
        if output.extension == "png":
            data = png.write(pixel_layers(output.data, artifact_id, explicit=explicit), label)
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


def pixel_layers(png_data: bytes, artifact_id: uuid.UUID, *, explicit: bool) -> bytes:
    """The layers drawn into an image's pixels, with one decode and one encode: the visible
    mark (`explicit`), then the artifact's watermark id (images large enough to carry one;
    not the tiny models' 64 px). The PNG as it was when neither applies."""
    with Image.open(io.BytesIO(png_data)) as opened:
        carries = watermark.can_carry(*opened.size)
        if not explicit and not carries:
            return png_data
        image = opened.convert("RGB")
    if explicit:
        explicit_labels.draw_mark(image)
    if carries:
        image = watermark.embed(image, watermark.watermark_id_of(artifact_id.bytes))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
