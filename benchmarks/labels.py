"""What labelling adds per artifact, in the worker, at store time (workers.labelling): the
signed metadata label written into a PNG and a WAV of typical sizes and made as a text
sidecar, the invisible watermark (which decodes and re-encodes an image), the C2PA manifest
(PNG and WAV), all of them together as a worker runs them, and the visible mark that
AIGC_EXPLICIT_LABELS adds. CPU only: no services, no model. Each figure is the median of
many runs, in microseconds."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from aigc.content_credentials import ContentCredentials, generated_credentials
from aigc.labels import LabelSigner, png, verify, wav
from benchmarks.report import comparison
from db.jobs import ClaimedJob
from models.artifacts import png_artifact, text_artifact, wav_artifact
from models.base import Artifact
from workers.labelling import Labelled, label_outputs, pixel_layers

# (runs, full) and (runs, --quick): enough that the median is stable to a few percent.
RUNS = {"full": 200, "quick": 30}
IMAGE_PX = 512  # a typical tiny-to-medium output; PNG size grows with it, the label does not
AUDIO_S = 5
SAMPLE_RATE = 16_000
# A job's artifacts are stored in one step that takes milliseconds: a label must cost less.
MAX_IMPLICIT_US = 1000.0
# A manifest is a signature, a few KB of JUMBF and a hash of the file: milliseconds.
MAX_C2PA_US = 25_000.0
# The watermark decodes the image and encodes it again: about one more encoding.
MAX_PNG_OVER_ENCODE = 3.0


def _encoders() -> dict[str, Callable[[], Artifact]]:
    """How a generator encodes each kind of output (the baseline labelling adds to)."""
    image = Image.effect_noise((IMAGE_PX, IMAGE_PX), 64).convert("RGB")
    pcm = bytes(range(256)) * (AUDIO_S * SAMPLE_RATE * 2 // 256)
    return {
        "text": lambda: text_artifact("generated words " * 64, 256),
        "png": lambda: png_artifact(image),
        "wav": lambda: wav_artifact(pcm, SAMPLE_RATE),
    }


def _median_us(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1e6, 1)


def _measure(
    encode: Callable[[], Artifact], runs: int, credentials: ContentCredentials
) -> tuple[dict[str, Any], float]:
    signer = LabelSigner(b"k" * 32, "aigc-jobs")
    job = ClaimedJob(uuid.uuid4(), "image", "tiny-image", "p", {}, 1, uuid.uuid4())
    artifact = encode()
    label = signer.label(
        content_id=uuid.uuid4(), job_id=job.id, team_id=job.team_id, model="m", model_revision=""
    )

    def labelled(explicit: bool, signed: ContentCredentials | None) -> list[Labelled]:
        return label_outputs(
            signer, job, [artifact], model_revision="", explicit=explicit, credentials=signed
        )

    [full] = labelled(False, credentials)
    data = full.artifact.data
    figure: dict[str, Any] = {
        "bytes": len(artifact.data),
        "added_bytes": len(data) - len(artifact.data) + len(full.sidecar or b""),
        "all_layers_us": _median_us(lambda: labelled(False, credentials), runs),
        "explicit_mark_too_us": _median_us(lambda: labelled(True, credentials), runs),
        "verify_all_layers_us": _median_us(
            lambda: verify(
                data,
                signer,
                filename=f"a.{artifact.extension}",
                sidecar=full.sidecar,
                credentials=credentials,
            ),
            runs,
        ),
    }
    if artifact.extension == "png":
        figure["metadata_label_us"] = _median_us(lambda: png.write(artifact.data, label), runs)
        figure["watermark_us"] = _median_us(
            lambda: pixel_layers(artifact.data, job.id, explicit=False), runs
        )
    elif artifact.extension == "wav":
        figure["metadata_label_us"] = _median_us(lambda: wav.write(artifact.data, label), runs)
    else:
        figure["metadata_label_us"] = _median_us(lambda: label.to_json(), runs)
    if artifact.extension in ("png", "wav"):
        figure["c2pa_us"] = _median_us(
            lambda: credentials.sign(
                artifact.data, artifact.mime_type, model="m", label=label.as_dict()
            ),
            runs,
        )
    return figure, _median_us(encode, runs)


def run(work_dir: Path, *, quick: bool) -> dict[str, Any]:
    runs = RUNS["quick" if quick else "full"]
    credentials = ContentCredentials(generated_credentials(work_dir), "aigc-jobs")
    figure, baseline = {}, {}
    for kind, encode in _encoders().items():
        figure[kind], baseline[f"{kind}_encode_us"] = _measure(encode, runs, credentials)
    worst_metadata = max(kind["metadata_label_us"] for kind in figure.values())
    worst_c2pa = max(kind.get("c2pa_us", 0.0) for kind in figure.values())
    return comparison(
        description=(
            "Labelling one artifact in the worker: each layer (metadata label, watermark, "
            "C2PA manifest) and all of them as a worker runs them, microseconds, median; "
            "baseline: encoding it; ratio: the PNG's labelling, all layers, over its "
            f"encoding ({IMAGE_PX} px)"
        ),
        figure=figure,
        baseline=baseline,
        ratio=figure["png"]["all_layers_us"] / baseline["png_encode_us"],
        targets={
            "worst_metadata_label_us": ("<=", MAX_IMPLICIT_US),
            "worst_c2pa_us": ("<=", MAX_C2PA_US),
            "png_all_layers_over_encode": ("<=", MAX_PNG_OVER_ENCODE),
        },
        values={
            "worst_metadata_label_us": worst_metadata,
            "worst_c2pa_us": worst_c2pa,
            "png_all_layers_over_encode": figure["png"]["all_layers_us"]
            / baseline["png_encode_us"],
        },
    )
