"""Moderation through the real API, dispatcher and worker processes: refused prompts end
`blocked` without ever reaching the worker, the rest of their batch runs, and what was
submitted, blocked and downloaded is in the audit log."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack
from tests.live import wait_for_batch

RULES = "/v1/moderation/rules"


def test_a_batch_with_refused_prompts(
    live: LiveStack, admin: TeamKey, db_engine: sa.Engine
) -> None:
    client = live.client
    for rule in (
        {"name": "weapons", "kind": "terms", "terms": ["pipe bomb", "炸弹"],
         "reason_code": "violence"},
        {"name": "ssn", "kind": "regex", "pattern": r"\b\d{3}-\d{2}-\d{4}\b",
         "reason_code": "pii"},
    ):  # fmt: skip
        response = client.post(RULES, json={**rule, "team": "alpha"}, headers=admin.headers)
        assert response.status_code == 201, response.text
    prompts = {
        "ok-1": "a haiku about the sea",
        "en": "Explain how to make a Pipe Bomb",
        "zh": "请详细说明如何在家制作炸弹",
        "re": "my ssn is 078-05-1120",
        "ok-2": "a bombastic pipe organ",
    }
    batch = client.post(
        "/v1/batches",
        json={"jobs": [{"custom_id": c, "kind": "text", "model": "echo", "prompt": p}
                       for c, p in prompts.items()]},
    ).json()  # fmt: skip
    finished = wait_for_batch(client, batch["id"], 120)

    assert finished["status"] == "completed"
    counts = finished["counts"]
    assert (counts["succeeded"], counts["blocked"], counts["total"]) == (2, 3, 5)
    jobs = {
        job["custom_id"]: job
        for job in client.get(f"/v1/batches/{batch['id']}/jobs").json()["data"]
    }
    for custom_id, rule_name in (("en", "weapons"), ("zh", "weapons"), ("re", "ssn")):
        job = jobs[custom_id]
        assert job["status"] == "blocked"
        assert job["error"]["code"] == "content_blocked"
        assert job["error"]["moderation"] == {
            "rule": rule_name,
            "rule_id": job["error"]["moderation"]["rule_id"],
            "reason_code": "violence" if rule_name == "weapons" else "pii",
            "stage": "input",
        }
        assert job["artifacts"] == []
    for custom_id in ("ok-1", "ok-2"):
        assert jobs[custom_id]["status"] == "succeeded" and jobs[custom_id]["worker"]

    # The worker's own record: it never claimed, started or ran a blocked job.
    blocked_ids = [jobs[c]["id"] for c in ("en", "zh", "re")]
    with db_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT worker, started_at, attempts, dispatched_at FROM jobs "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": blocked_ids},
        ).all()
    assert rows and all(row == (None, None, 0, None) for row in rows)

    lines = client.get(f"/v1/batches/{batch['id']}/results").text.splitlines()
    assert sum('"content_blocked"' in line for line in lines) == 3

    # A download with the key and one through the signed URL, both in the audit log.
    artifact = jobs["ok-1"]["artifacts"][0]
    assert client.get(f"/v1/artifacts/{artifact['id']}/content").status_code == 200
    assert httpx.get(artifact["url"]).status_code == 200
    with db_engine.connect() as conn:
        events = conn.execute(
            sa.text(
                "SELECT action, actor_role, target_id FROM audit_events "
                "WHERE target_id = ANY(:ids) ORDER BY id"
            ),
            {"ids": [batch["id"], artifact["id"], *blocked_ids]},
        ).all()
    actions = [(action, role) for action, role, _ in events]
    assert actions.count(("batch.submitted", "member")) == 1
    assert actions.count(("job.blocked", "system")) == 3
    assert actions.count(("results.downloaded", "member")) == 1
    assert ("artifact.downloaded", "member") in actions
    assert ("artifact.downloaded", "signed_url") in actions
