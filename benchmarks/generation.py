"""Batched generation, in this process: the tiny text and image models given a worker chunk's
requests in one generate() call, against the same requests one call at a time."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.report import comparison
from models.base import GenerationRequest, Generator
from models.loading import load_generator
from models.params import ImageParams, TextParams
from models.registry import TINY_IMAGE, TINY_TEXT

log = logging.getLogger(__name__)

TEXT_JOBS, TEXT_CHUNK = 64, 16
IMAGE_JOBS, IMAGE_CHUNK = 8, 4
ROUNDS = 3
# The tiny models' matrices are too small to gain from intra-op threads, and on a shared
# 2-core host torch's default two OpenMP threads spin against other processes: timings then
# swing 20x from one run to the next. One thread measures batching, not the neighbours.
TORCH_THREADS = 1


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _text_requests() -> list[GenerationRequest[TextParams]]:
    params = TextParams(max_new_tokens=32, temperature=0.0)
    return [
        GenerationRequest(f"Article {n}: the prospects of AIGC for content team {n}.", params)
        for n in range(TEXT_JOBS)
    ]


def _image_requests() -> list[GenerationRequest[ImageParams]]:
    # Seeds differ, as a batch's jobs would: the pipeline still runs them as one call.
    return [
        GenerationRequest(
            f"a lighthouse at sunrise, variant {n}",
            ImageParams(width=64, height=64, steps=4, seed=n),
        )
        for n in range(IMAGE_JOBS)
    ]


def _timed_calls(
    generator: Generator, requests: Sequence[GenerationRequest[Any]], chunk: int
) -> tuple[float, list[bytes]]:
    """Seconds to run all requests `chunk` at a time, and the outputs' bytes in order."""
    outputs: list[bytes] = []
    started = time.perf_counter()
    for start in range(0, len(requests), chunk):
        results = generator.generate(requests[start : start + chunk])
        outputs += [artifacts[0].data for artifacts in results]
    return time.perf_counter() - started, outputs


def _compare(
    description: str,
    generator: Generator,
    requests: Sequence[GenerationRequest[Any]],
    chunk: int,
    target: float,
) -> dict[str, Any]:
    batched_runs, single_runs = [], []
    with torch_threads(TORCH_THREADS):
        generator.warmup()
        # Alternated, so a neighbour's burst of load hits both sides alike.
        for _ in range(ROUNDS):
            batched_s, batched = _timed_calls(generator, requests, chunk)
            single_s, single = _timed_calls(generator, requests, 1)
            batched_runs.append(batched_s)
            single_runs.append(single_s)
    # Batching must not change what a job gets back: count the outputs that match.
    identical = sum(a == b for a, b in zip(batched, single, strict=True))
    batched_s, single_s = statistics.median(batched_runs), statistics.median(single_runs)
    return comparison(
        description=(
            f"{len(requests)} {description}: generate() in chunks of {chunk}, "
            f"median of {ROUNDS} rounds"
        ),
        figure={
            "jobs": len(requests),
            "chunk": chunk,
            "seconds": batched_s,
            "seconds_each_round": batched_runs,
            "outputs_identical_to_baseline": identical,
            "torch_threads": TORCH_THREADS,
        },
        baseline={
            "description": "the same requests, one generate() call each",
            "seconds": single_s,
            "seconds_each_round": single_runs,
        },
        ratio=single_s / batched_s,
        targets={"ratio": (">=", target)},
    )


def run_text(model_dir: Path, *, quick: bool) -> dict[str, Any]:
    """`quick` changes nothing here: the benchmark takes seconds."""
    log.info("batched_text: %d jobs, chunks of %d vs one by one", TEXT_JOBS, TEXT_CHUNK)
    return _compare(
        "text jobs on tiny-text, greedy, max_new_tokens=32",
        load_generator(TINY_TEXT, model_dir),
        _text_requests(),
        TEXT_CHUNK,
        target=6.0,
    )


def run_image(model_dir: Path, *, quick: bool) -> dict[str, Any]:
    """`quick` changes nothing here: the benchmark takes seconds."""
    log.info("batched_image: %d jobs, chunks of %d vs one by one", IMAGE_JOBS, IMAGE_CHUNK)
    return _compare(
        "image jobs on tiny-image, 64x64, 4 steps, a seed each",
        load_generator(TINY_IMAGE, model_dir),
        _image_requests(),
        IMAGE_CHUNK,
        target=2.0,
    )
