"""Artifact store throughput: put and get, in MB/s and objects/s, of the S3 store against a
SeaweedFS server on this machine, next to the local store measured in the same run (the
baseline). Small objects are a text or audio artifact; large ones an image grid or a batch's
results. Puts go through put_many, as a worker stores a chunk's artifacts; gets read each
object whole, as the API does for a batch's text results."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from aigc.seaweedfs import ACCESS_KEY_ID, SECRET_ACCESS_KEY, SeaweedS3
from aigc.settings import Settings
from aigc.storage import ArtifactStore, LocalStore, open_store
from benchmarks.report import comparison

log = logging.getLogger(__name__)

BUCKET = "bench"
MIB = 1024 * 1024
# (objects, bytes each) per shape: full and --quick.
SHAPES = {
    "small": {"full": (1000, 64 * 1024), "quick": (200, 64 * 1024)},
    "large": {"full": (32, 8 * MIB), "quick": (8, 4 * MIB)},
}
# A worker stores a text chunk's 16 artifacts in one put_many: at this many objects a
# second S3 adds at most 0.16 s to a chunk whose generation takes seconds.
MIN_S3_SMALL_PUTS_PER_S = 100.0


def _measure(store: ArtifactStore, prefix: str, count: int, size: int) -> dict[str, float]:
    payload = os.urandom(size)
    keys = [f"{prefix}/{n:05d}.bin" for n in range(count)]
    started = time.perf_counter()
    store.put_many((key, payload) for key in keys)
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        with store.open(key) as body:
            if len(body.read()) != size:
                raise RuntimeError(f"{key}: read back a different size")
    get_s = time.perf_counter() - started
    for key in keys:
        store.delete(key)
    megabytes = count * size / MIB
    return {
        "objects": count,
        "object_bytes": size,
        "put_mb_s": megabytes / put_s,
        "put_objects_s": count / put_s,
        "get_mb_s": megabytes / get_s,
        "get_objects_s": count / get_s,
    }


def _measure_shapes(store: ArtifactStore, *, quick: bool) -> dict[str, dict[str, float]]:
    mode = "quick" if quick else "full"
    results = {}
    for shape, sizes in SHAPES.items():
        count, size = sizes[mode]
        results[shape] = _measure(store, f"bench/{shape}", count, size)
        log.info("%s %s: %s", store.location, shape, results[shape])
    return results


def run(work_dir: Path, *, quick: bool) -> dict[str, Any]:
    baseline = _measure_shapes(LocalStore(work_dir / "local-store"), quick=quick)
    with SeaweedS3(work_dir / "seaweedfs", BUCKET) as server:
        settings = Settings(
            artifact_store=f"s3://{BUCKET}/run",
            s3_endpoint_url=server.endpoint_url,
            s3_access_key_id=SecretStr(ACCESS_KEY_ID),
            s3_secret_access_key=SecretStr(SECRET_ACCESS_KEY),
        )
        store = open_store(settings)
        # The server allocates its first volumes on the first write: not part of the figure.
        store.put("warmup", b"x")
        figure = _measure_shapes(store, quick=quick)
    small_put = figure["small"]["put_objects_s"]
    return comparison(
        description=(
            "S3 store (SeaweedFS on this machine) put/get throughput against the local "
            "store's; ratio: S3 small-object puts per second over local's"
        ),
        figure=figure,
        baseline=baseline,
        ratio=small_put / baseline["small"]["put_objects_s"],
        targets={"s3_small_put_objects_s": (">=", MIN_S3_SMALL_PUTS_PER_S)},
        values={"s3_small_put_objects_s": small_put},
    )
