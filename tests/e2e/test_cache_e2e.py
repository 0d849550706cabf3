"""The opt-in result cache through the real worker: an identical image request with a seed
and `cache: true` is answered at once as a new succeeded job that never ran, its artifact
new but its bytes (and the label in them, naming the source) the earlier job's; anything
different runs; no seed is a 422; another team's identical request runs for that team."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import sqlalchemy as sa

from aigc.client import Client
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_job

SMALL = {"width": 64, "height": 64, "steps": 1, "seed": 11}
IMAGE: dict[str, Any] = {"kind": "image", "prompt": "a cached dot", "params": SMALL}


def _ran(client: httpx.Client, **body: Any) -> dict[str, Any]:
    job = wait_for_job(client, submit(client, **body)["id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["worker"] is not None and job["cache_hit"] is False
    return job


def test_an_identical_request_reuses_the_result(
    live: LiveStack, team: TeamKey, db_engine: sa.Engine
) -> None:
    source = _ran(live.client, **IMAGE, cache=True)  # nothing to reuse yet: it runs
    assert source["cached_from"] is None

    hit = submit(live.client, **IMAGE, cache=True)
    assert hit["status"] == "succeeded" and hit["id"] != source["id"]
    assert (hit["cache_hit"], hit["cached_from"]) == (True, source["id"])
    assert (hit["worker"], hit["started_at"], hit["attempts"]) == (None, None, 0)
    assert hit["finished_at"] is not None
    assert live.client.get(f"/v1/jobs/{hit['id']}").json() == hit  # as stored, not as made

    [original] = source["artifacts"]
    [reused] = hit["artifacts"]
    assert reused["id"] != original["id"]
    assert (reused["sha256"], reused["bytes"]) == (original["sha256"], original["bytes"])
    data = live.client.get(reused["url"]).content
    assert data == live.client.get(original["url"]).content
    assert hashlib.sha256(data).hexdigest() == original["sha256"]
    # The bytes are shared, and so is the label in them: it names the source.
    assert reused["label"] == original["label"]
    assert (reused["label"]["content_id"], reused["label"]["job_id"]) == (
        original["id"],
        source["id"],
    )
    verified = live.client.post(
        "/v1/verify", content=data, headers={"content-type": "image/png"}
    ).json()
    assert (verified["status"], verified["job"]["job_id"]) == ("valid", source["id"]), verified

    provenance = live.client.get(f"/v1/artifacts/{reused['id']}/provenance").json()
    assert (provenance["cache_hit"], provenance["cached_from"]) == (True, source["id"])
    assert (provenance["job_id"], provenance["label"]) == (hit["id"], original["label"])
    mine = live.client.get(f"/v1/artifacts/{original['id']}/provenance").json()
    assert (mine["cache_hit"], mine["cached_from"]) == (False, None)

    # Its end is an event like any job's (webhooks and event streams see it finish).
    with db_engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT type, status FROM job_events WHERE job_id = :id"), {"id": hit["id"]}
        ).all()
        # The submission's audit row notes the hit.
        details = conn.execute(
            sa.text("SELECT details FROM audit_events WHERE target_id = :id"), {"id": hit["id"]}
        ).scalar_one()
    assert [tuple(event) for event in events] == [("completed", "succeeded")]
    assert details == {"kind": "image", "model": "tiny-image", "cache_hit": True}

    with Client(live.api_url, api_key=team.key) as client:
        again = client.submit("image", IMAGE["prompt"], params=SMALL, cache=True)
        assert (again.cache_hit, str(again.cached_from)) == (True, source["id"])
        assert again.status == "succeeded"
        assert client.get(source["id"]).cache_hit is False


def test_anything_different_runs(live: LiveStack, other_team: TeamKey) -> None:
    source = _ran(live.client, **IMAGE)  # a seed is enough for a later request to reuse it
    variants = [
        {**IMAGE, "params": {**SMALL, "seed": 12}},
        {**IMAGE, "prompt": "another dot"},
        {**IMAGE, "params": {**SMALL, "steps": 2}},
    ]
    for body in variants:
        job = _ran(live.client, **body, cache=True)
        assert job["artifacts"][0]["sha256"] != "" and job["cached_from"] is None
    assert submit(live.client, **IMAGE, cache=True)["cached_from"] == source["id"]
    # Without `cache`, an identical request runs.
    assert _ran(live.client, **IMAGE)["id"] != source["id"]

    with httpx.Client(base_url=live.api_url, headers=other_team.headers) as other:
        theirs = wait_for_job(other, submit(other, **IMAGE, cache=True)["id"])
    assert (theirs["status"], theirs["cache_hit"]) == ("succeeded", False)
    assert theirs["worker"] is not None


def test_cache_needs_a_seed(live: LiveStack) -> None:
    refused = live.client.post(
        "/v1/jobs", json={**IMAGE, "params": {"width": 64, "height": 64}, "cache": True}
    )
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["error"]["errors"]
    assert error["field"] == "cache" and "params.seed" in error["message"]
    assert live.client.get("/v1/jobs").json()["data"] == []


def test_new_weights_are_a_miss(live: LiveStack, db_engine: sa.Engine) -> None:
    """A hit needs the source's model revision to be the newest the team's jobs of that
    model recorded: once a job ran on other weights, earlier results are not reused."""
    source = _ran(live.client, **IMAGE)
    newer = _ran(live.client, **{**IMAGE, "prompt": "made on the new weights"})
    with db_engine.begin() as conn:
        # The source as made by weights that are no longer the ones loaded.
        conn.execute(
            sa.text("UPDATE jobs SET model_revision = :old WHERE id = :id"),
            {"old": "0" * 64, "id": source["id"]},
        )
    rerun = _ran(live.client, **IMAGE, cache=True)
    assert rerun["id"] not in (source["id"], newer["id"])
    # The rerun is on the current weights: it is what the next request reuses.
    assert submit(live.client, **IMAGE, cache=True)["cached_from"] == rerun["id"]
