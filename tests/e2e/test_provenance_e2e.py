"""Provenance through the real worker: an image job's artifact names the hash of the very
weights files the worker loaded (recomputed here from the test's model folder), its label
carries the same value, a batch line says where it stood, the SDK reads it, and another
team's or an unknown artifact is a 404."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path

import httpx

from aigc.client import AsyncClient, Client, NotFound
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_batch, wait_for_job

SMALL = {"width": 64, "height": 64, "steps": 1}
IMAGE = {"kind": "image", "prompt": "a dot", "params": SMALL}


def _weights_sha256(folder: Path) -> str:
    """What the API documents: sha256 over the weight files' bytes in path order."""
    digest = hashlib.sha256()
    weights = sorted(
        p for p in folder.rglob("*") if p.suffix in {".safetensors", ".bin", ".pt", ".onnx"}
    )
    assert weights, f"no weights under {folder}"
    for path in sorted(weights, key=lambda p: p.relative_to(folder).as_posix()):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_an_image_names_the_weights_that_made_it(
    live: LiveStack, tiny_models: Path, team: TeamKey, other_team: TeamKey
) -> None:
    job = wait_for_job(live.client, submit(live.client, **IMAGE)["id"])
    assert job["status"] == "succeeded", job["error"]
    [artifact] = job["artifacts"]

    response = live.client.get(f"/v1/artifacts/{artifact['id']}/provenance")
    assert response.status_code == 200, response.text
    provenance = response.json()
    revision = _weights_sha256(tiny_models / "tiny-image")
    assert provenance["model"] == {
        "name": "tiny-image",
        "kind": "image",
        "source": "",
        "revision": revision,
    }
    assert provenance["label"] == artifact["label"]
    assert provenance["label"]["model_revision"] == revision
    assert provenance["artifact"]["id"] == artifact["id"]
    assert provenance["artifact"]["sha256"] == artifact["sha256"]
    assert provenance["artifact"]["size"] == artifact["bytes"]
    assert provenance["job_id"] == job["id"]
    assert (provenance["prompt"], provenance["params"]) == (job["prompt"], job["params"])
    assert (provenance["team"], provenance["key_prefix"]) == (team.name, team.prefix)
    assert (provenance["batch_id"], provenance["line"], provenance["custom_id"]) == (
        None,
        None,
        None,
    )
    assert provenance["worker"] == job["worker"] and ":" in provenance["worker"]
    timings = provenance["timings"]
    assert timings["attempts"] == 1
    assert timings["queued_s"] >= 0 and timings["run_s"] >= 0
    assert (provenance["inputs"], provenance["cache_hit"]) == ([], False)

    with httpx.Client(base_url=live.api_url, headers=other_team.headers) as other:
        theirs = other.get(f"/v1/artifacts/{artifact['id']}/provenance")
    assert theirs.status_code == 404, theirs.text
    unknown = live.client.get(f"/v1/artifacts/{uuid.uuid4()}/provenance")
    assert unknown.status_code == 404, unknown.text
    assert live.client.get("/v1/artifacts/not-an-id/provenance").status_code == 422


def test_a_batch_line_with_its_seed_through_the_sdk(live: LiveStack, team: TeamKey) -> None:
    lines = [
        {**IMAGE, "custom_id": "first"},
        {**IMAGE, "params": {**SMALL, "seed": 7}, "custom_id": "second"},
    ]
    created = live.client.post("/v1/batches", json={"jobs": lines})
    assert created.status_code == 202, created.text
    batch = wait_for_batch(live.client, created.json()["id"])
    assert batch["counts"]["succeeded"] == 2, batch

    with Client(live.api_url, api_key=team.key) as client:
        jobs = {job.custom_id: job for job in client.batch_jobs(batch["id"])}
        provenance = client.provenance(jobs["second"].artifacts[0])
        assert (provenance.batch_id, provenance.line, provenance.custom_id) == (
            batch["id"],
            2,
            "second",
        )
        assert provenance.seed == 7
        assert provenance.model.revision == provenance.label["model_revision"]
        assert client.provenance(jobs["first"].artifacts[0].id).seed is None

    async def read_async() -> str:
        async with AsyncClient(live.api_url, api_key=team.key) as client:
            try:
                await client.provenance(str(uuid.uuid4()))
            except NotFound:
                pass
            else:
                raise AssertionError("an unknown artifact's provenance was found")
            return (await client.provenance(jobs["second"].artifacts[0])).model.revision

    assert asyncio.run(read_async()) == provenance.model.revision
