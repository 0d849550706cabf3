"""Labelling a job's outputs at store time: each gets its id here (the label's content id),
an optional visible mark, and its signed implicit label: inside PNG and WAV bytes, in a
sidecar next to text. The sha256 and size recorded describe the labelled bytes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

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
) -> list[Labelled]:
    """`model_revision` is the model's catalog source ("" for the built-in tiny models)."""
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
            output = replace(output, data=png.write(output.data, label))
        elif output.extension == "wav":
            output = replace(output, data=wav.write(output.data, label))
        else:
            sidecar = label.to_json()
        labelled.append(Labelled(artifact_id, output, sidecar))
    return labelled
