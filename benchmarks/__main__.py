"""`python -m benchmarks [--quick] [--out FILE]`: run the benchmarks, print one JSON document
and write it to FILE (bench-results/latest.json by default)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import (
    accept,
    events,
    fairness,
    generation,
    labels,
    latency,
    model_load,
    results,
    storage,
    throughput,
    watermark,
    webhooks,
)
from benchmarks.report import rounded
from benchmarks.services import Services, running_services

log = logging.getLogger("benchmarks")

RESULTS_DIR = Path("bench-results")
SERVICE_BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "accept": accept.run,
    "throughput": throughput.run,
    "latency": latency.run,
    "results": results.run,
    "fairness": fairness.run,
    "events": events.run,
    "webhooks": webhooks.run,
}
MODEL_BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "batched_text": generation.run_text,
    "batched_image": generation.run_image,
    "model_load_text": model_load.run_text,
    "model_load_image": model_load.run_image,
}
# Benchmarks that start what they need themselves in the run's work directory.
STANDALONE_BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "storage": storage.run,
    "watermark": watermark.run,
    "labels": labels.run,
}
ALL = (*SERVICE_BENCHMARKS, *MODEL_BENCHMARKS, *STANDALONE_BENCHMARKS)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs, a few minutes in all")
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON"
    )
    parser.add_argument(
        "--only",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        default=list(ALL),
        help=f"comma-separated subset of: {', '.join(ALL)}",
    )
    parser.add_argument(
        "--embedded",
        action="store_true",
        help="use embedded PostgreSQL and Valkey even where local servers answer",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(ALL))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    return args


def _machine(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        # Others' processes may share the cores: the load says how quiet the run was.
        "load_average_1_5_15_at_start": list(load_at_start),
        "load_average_1_5_15_at_end": list(os.getloadavg()),
    }


def _run_services(
    args: argparse.Namespace, work_dir: Path, log_dir: Path, results: dict[str, Any]
) -> dict[str, str]:
    """The benchmarks that need PostgreSQL and Redis; returns which servers they used."""
    names = [name for name in SERVICE_BENCHMARKS if name in args.only]
    if not names:
        return {}
    with running_services(work_dir, log_dir, embedded=args.embedded) as services:
        for name in names:
            results[name] = _timed(name, SERVICE_BENCHMARKS[name], services, quick=args.quick)
        return _servers(services)


def _servers(services: Services) -> dict[str, str]:
    return {"postgres": services.postgres, "redis": services.redis}


def _run_models(args: argparse.Namespace, work_dir: Path, results: dict[str, Any]) -> None:
    """The benchmarks that run the tiny models in this process or a child: no services."""
    names = [name for name in MODEL_BENCHMARKS if name in args.only]
    if not names:
        return
    from models.registry import TINY_IMAGE, TINY_TEXT
    from models.tiny import ensure_tiny_model

    model_dir = work_dir / "models"
    log.info("building the tiny models in %s", model_dir)
    for spec in (TINY_TEXT, TINY_IMAGE):
        ensure_tiny_model(spec.name, model_dir)
    for name in names:
        results[name] = _timed(name, MODEL_BENCHMARKS[name], model_dir, quick=args.quick)


def _run_standalone(args: argparse.Namespace, work_dir: Path, results: dict[str, Any]) -> None:
    for name, run in STANDALONE_BENCHMARKS.items():
        if name in args.only:
            results[name] = _timed(name, run, work_dir / name, quick=args.quick)


def _timed(name: str, run: Callable[..., dict[str, Any]], *args: Any, quick: bool) -> Any:
    started = time.perf_counter()
    result = run(*args, quick=quick)
    result["wall_s"] = time.perf_counter() - started
    log.info(
        "%s done in %.1fs: ratio %.2f, targets met: %s",
        name,
        result["wall_s"],
        result["ratio"],
        result["met"],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll drowns the rest
    started, load_at_start = time.perf_counter(), os.getloadavg()
    log_dir = RESULTS_DIR / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)  # one run's process logs, not an accumulation
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aigc-bench-") as tmp:
        work_dir = Path(tmp)
        servers = _run_services(args, work_dir, log_dir, results)
        _run_models(args, work_dir, results)
        _run_standalone(args, work_dir, results)
    document = rounded(
        {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
            "machine": _machine(load_at_start),
            "services": servers,
            "benchmarks": results,
            "all_targets_met": all(result["met"] for result in results.values()),
            "wall_s": time.perf_counter() - started,
        }
    )
    text = json.dumps(document, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    log.info("written to %s; process logs in %s", args.out, log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
