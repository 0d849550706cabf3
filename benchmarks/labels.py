"""What labelling adds per artifact, in the worker, at store time: the signed label written
into a PNG and a WAV of typical sizes and made as a text sidecar (workers.labelling), and the
visible mark that AIGC_EXPLICIT_LABELS adds (which decodes and re-encodes an image). CPU
only: no services, no model. Each figure is the median of many runs, in microseconds."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from aigc.labels import LabelSigner, verify
from benchmarks.report import comparison
from db.jobs import ClaimedJob
from models.artifacts import png_artifact, text_artifact, wav_artifact
from models.base import Artifact
from workers.labelling import Labelled, label_outputs

# (runs, full) and (runs, --quick): enough that the median is stable to a few percent.
RUNS = {"full": 200, "quick": 30}
IMAGE_PX = 512  # a typical tiny-to-medium output; PNG size grows with it, the label does not
AUDIO_S = 5
SAMPLE_RATE = 16_000
# A job's artifacts are stored in one step that takes milliseconds: a label must cost less.
MAX_IMPLICIT_US = 1000.0


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


def _measure(encode: Callable[[], Artifact], runs: int) -> tuple[dict[str, Any], float]:
    signer = LabelSigner(b"k" * 32, "aigc-jobs")
    job = ClaimedJob(uuid.uuid4(), "image", "tiny-image", "p", {}, 1, uuid.uuid4())
    artifact = encode()

    def label(explicit: bool) -> list[Labelled]:
        return label_outputs(signer, job, [artifact], model_revision="", explicit=explicit)

    [labelled] = label(False)
    data = labelled.artifact.data
    figure = {
        "bytes": len(artifact.data),
        "label_bytes": len(data) - len(artifact.data) + len(labelled.sidecar or b""),
        "implicit_us": _median_us(lambda: label(False), runs),
        "explicit_us": _median_us(lambda: label(True), runs),
        "verify_us": _median_us(
            lambda: verify(
                data, signer, filename=f"a.{artifact.extension}", sidecar=labelled.sidecar
            ),
            runs,
        ),
    }
    return figure, _median_us(encode, runs)


def run(work_dir: Path, *, quick: bool) -> dict[str, Any]:
    runs = RUNS["quick" if quick else "full"]
    figure, baseline = {}, {}
    for kind, encode in _encoders().items():
        figure[kind], baseline[f"{kind}_encode_us"] = _measure(encode, runs)
    worst = max(kind["implicit_us"] for kind in figure.values())
    return comparison(
        description=(
            "Labelling one artifact in the worker: implicit (signed metadata label) and "
            "explicit (visible mark too), microseconds, median; baseline: encoding it; "
            f"ratio: the PNG's implicit label over its encoding ({IMAGE_PX} px)"
        ),
        figure=figure,
        baseline=baseline,
        ratio=figure["png"]["implicit_us"] / baseline["png_encode_us"],
        targets={"worst_implicit_us": ("<=", MAX_IMPLICIT_US)},
        values={"worst_implicit_us": worst},
    )
