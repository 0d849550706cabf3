"""`aigc.client.AsyncClient` against the real stack."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from aigc.client import AsyncClient, NotFound
from tests.conftest import TeamKey
from tests.e2e.conftest import LiveStack


def test_async_submit_wait_get_list(live: LiveStack, team: TeamKey, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with AsyncClient(live.api_url, team.key) as client:
            jobs = await asyncio.gather(
                *(client.submit("text", f"async {n}", model="echo") for n in range(3))
            )
            done = await asyncio.gather(*(client.wait(job.id, timeout_s=60) for job in jobs))
            assert {job.status for job in done} == {"succeeded"}
            assert (await client.get(jobs[0].id)).artifacts[0].bytes == len("async 0")
            listed = [job.id async for job in client.list(page_size=2)]
            assert sorted(listed) == sorted(job.id for job in jobs)
            batch = await client.submit_batch(
                [{"kind": "text", "model": "echo", "prompt": "b", "custom_id": "x"}]
            )
            assert (await client.wait_batch(batch.id, timeout_s=60)).counts.succeeded == 1
            assert [line.custom_id async for line in client.batch_results(batch.id)] == ["x"]
            saved = await client.download_batch_results(
                batch.id, tmp_path / "results.csv", format="csv"
            )
            assert saved.read_bytes().startswith(b"\xef\xbb\xbfline,custom_id,")
            assert saved.read_text(encoding="utf-8-sig").splitlines()[1].startswith("1,x,")
            assert [b.id async for b in client.list_batches(page_size=1)] == [batch.id]
            with pytest.raises(NotFound):
                await client.get(str(uuid.uuid4()))

    asyncio.run(scenario())
