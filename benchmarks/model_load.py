"""A worker's first job on a model against its later ones. Each kind is measured in a fresh
Python process, so the first job pays what it pays in a worker started with
AIGC_PRELOAD_MODELS=false: the imports (torch, transformers or diffusers), the load through
ModelCache, and the first generate() call's lazy set-up.

`python -m benchmarks.model_load KIND MODEL_DIR` prints that process's timings as JSON."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.generation import TORCH_THREADS, torch_threads
from benchmarks.report import comparison
from models.base import GenerationRequest
from models.params import ImageParams, TextParams
from models.registry import TINY_IMAGE, TINY_TEXT, ModelSpec, import_generator_class
from workers.model_cache import ModelCache

log = logging.getLogger(__name__)

LATER_JOBS = 5
CHILD_TIMEOUT_S = 300.0
SPECS: dict[str, ModelSpec] = {"text": TINY_TEXT, "image": TINY_IMAGE}
REQUESTS: dict[str, GenerationRequest[Any]] = {
    "text": GenerationRequest(
        "The prospects of AIGC", TextParams(max_new_tokens=32, temperature=0.0)
    ),
    "image": GenerationRequest(
        "a lighthouse at sunrise", ImageParams(width=64, height=64, steps=4, seed=0)
    ),
}


def measure(kind: str, model_dir: Path) -> dict[str, Any]:
    """Run in a fresh process: the first job's phases, then the later jobs' times."""
    spec, request = SPECS[kind], REQUESTS[kind]
    started = time.perf_counter()
    import_generator_class(spec)
    import models.tiny  # noqa: F401 - ModelCache imports it for a tiny model; timed with imports

    imported = time.perf_counter()
    with torch_threads(TORCH_THREADS):
        cache = ModelCache(model_dir, capacity=1)
        generator = cache.get(spec)
        loaded = time.perf_counter()
        generator.generate([request])
        first_done = time.perf_counter()
        later = []
        for _ in range(LATER_JOBS):
            job_started = time.perf_counter()
            cache.get(spec).generate([request])
            later.append(time.perf_counter() - job_started)
    return {
        "imports_s": imported - started,
        "load_s": loaded - imported,
        "first_generate_s": first_done - loaded,
        "first_job_s": first_done - started,
        "later_jobs_s": later,
    }


def _measure_in_child(kind: str, model_dir: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.model_load", kind, str(model_dir)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"model_load {kind} failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def _run(kind: str, model_dir: Path) -> dict[str, Any]:
    log.info("model_load_%s: first job in a fresh process vs %d later ones", kind, LATER_JOBS)
    timings = _measure_in_child(kind, model_dir)
    later_s = statistics.median(timings["later_jobs_s"])
    return comparison(
        description=(
            f"a worker's first {kind} job on {SPECS[kind].name} in a fresh process: imports, "
            "ModelCache.get (load) and the first generate()"
        ),
        figure={key: value for key, value in timings.items() if key != "later_jobs_s"},
        baseline={
            "description": f"median of the {LATER_JOBS} next jobs (ModelCache.get + generate)",
            "seconds": later_s,
            "seconds_each_job": timings["later_jobs_s"],
        },
        ratio=timings["first_job_s"] / later_s,
    )


def run_text(model_dir: Path, *, quick: bool) -> dict[str, Any]:
    """`quick` changes nothing here: the benchmark takes seconds."""
    return _run("text", model_dir)


def run_image(model_dir: Path, *, quick: bool) -> dict[str, Any]:
    """`quick` changes nothing here: the benchmark takes seconds."""
    return _run("image", model_dir)


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], Path(sys.argv[2]))))
