"""One job of each kind through the real API process, broker and worker process."""

from __future__ import annotations

import io
import wave

from PIL import Image

from tests.e2e.conftest import LiveStack
from tests.live import submit, wait_for_job


def test_text_job_produces_model_text(live: LiveStack) -> None:
    job = submit(
        live.client,
        kind="text",
        prompt="The future of content is",
        params={"seed": 1, "max_new_tokens": 24},
    )
    assert job["status"] == "queued"
    done = wait_for_job(live.client, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["model"] == "tiny-text"
    assert done["attempts"] == 1 and done["worker"]
    [artifact] = done["artifacts"]
    assert artifact["mime_type"] == "text/plain; charset=utf-8"
    body = live.client.get(artifact["url"])
    assert body.status_code == 200
    assert body.headers["content-type"].startswith("text/plain")
    text = body.content.decode("utf-8")
    assert text.strip()
    assert artifact["characters"] == len(text)
    assert artifact["tokens"] > 0
    assert text != "The future of content is"  # the model wrote it, not an echo


def test_image_job_produces_png_of_requested_size(live: LiveStack) -> None:
    job = submit(
        live.client,
        kind="image",
        prompt="a red square",
        params={"width": 64, "height": 96, "steps": 2, "seed": 3, "num_images": 2},
    )
    done = wait_for_job(live.client, job["id"])
    assert done["status"] == "succeeded", done["error"]
    assert [a["index"] for a in done["artifacts"]] == [0, 1]
    for artifact in done["artifacts"]:
        assert artifact["mime_type"] == "image/png"
        assert (artifact["width"], artifact["height"]) == (64, 96)
        content = live.client.get(artifact["url"]).content
        assert len(content) == artifact["bytes"]
        with Image.open(io.BytesIO(content)) as image:
            assert image.format == "PNG"
            assert image.size == (64, 96)


def test_audio_job_produces_wav(live: LiveStack) -> None:
    job = submit(live.client, kind="audio", prompt="hello from the worker", params={"seed": 5})
    done = wait_for_job(live.client, job["id"])
    assert done["status"] == "succeeded", done["error"]
    [artifact] = done["artifacts"]
    assert artifact["mime_type"] == "audio/wav"
    response = live.client.get(artifact["url"])
    assert response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert wav.getframerate() == artifact["sample_rate"]
        assert wav.getsampwidth() == 2  # PCM 16-bit
        frames = wav.readframes(wav.getnframes())
    assert wav.getnframes() > 0
    assert any(frames), "all samples are zero"
    assert abs(artifact["duration_s"] - wav.getnframes() / artifact["sample_rate"]) < 0.002


def test_seeded_text_is_reproducible(live: LiveStack) -> None:
    params = {"seed": 42, "max_new_tokens": 16, "temperature": 1.0}
    other_seed = {**params, "seed": 43}
    jobs = [
        submit(live.client, kind="text", prompt="Once", params=p)
        for p in (params, params, other_seed)
    ]
    first, second, other = (wait_for_job(live.client, job["id"]) for job in jobs)
    for done in (first, second, other):
        assert done["status"] == "succeeded", done["error"]
    assert first["artifacts"][0]["sha256"] == second["artifacts"][0]["sha256"]
    # The negative control: sampling depends on the seed, so equal outputs mean the seed.
    assert other["artifacts"][0]["sha256"] != first["artifacts"][0]["sha256"]


def test_generator_error_fails_only_that_job(live: LiveStack) -> None:
    # Nothing in the prompt is a character the voice model can pronounce: the model rejects
    # it in the worker (the API cannot tell without the model's tokenizer).
    bad = submit(live.client, kind="audio", prompt="☃☃☃")
    failed = wait_for_job(live.client, bad["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "invalid_input"
    assert "pronounce" in failed["error"]["message"]
    assert failed["artifacts"] == []
    # The worker is still serving.
    good = submit(live.client, kind="text", model="echo", prompt="still here")
    assert wait_for_job(live.client, good["id"])["status"] == "succeeded"


def test_prompt_over_the_models_context_is_refused_at_submit(live: LiveStack) -> None:
    # Counted with tiny-text's own tokenizer by the API process, which has no torch.
    too_long = " ".join(f"word{i}" for i in range(3000))
    response = live.client.post("/v1/jobs", json={"kind": "text", "prompt": too_long})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "over_budget"
    assert error["errors"][0]["field"] == "prompt"
    assert "context is 512 tokens" in error["message"]


def test_finished_job_cannot_be_canceled(live: LiveStack) -> None:
    job = submit(live.client, kind="text", model="echo", prompt="done soon")
    wait_for_job(live.client, job["id"])
    response = live.client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "conflict"


def test_list_jobs_newest_first_with_cursor(live: LiveStack) -> None:
    ids = [submit(live.client, kind="text", model="echo", prompt=f"p{i}")["id"] for i in range(5)]
    for job_id in ids:
        wait_for_job(live.client, job_id)
    first = live.client.get("/v1/jobs", params={"limit": 3}).json()
    assert [j["id"] for j in first["data"]] == ids[::-1][:3]
    second = live.client.get("/v1/jobs", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [j["id"] for j in second["data"]] == ids[::-1][3:]
    assert second["next_cursor"] is None
    only_text = live.client.get("/v1/jobs", params={"kind": "image"}).json()
    assert only_text["data"] == []
    succeeded = live.client.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert len(succeeded["data"]) == 5


def test_cancel_stops_a_running_job_at_its_next_step(live: LiveStack) -> None:
    # 150 denoising steps at 512x512 take the tiny model several seconds here.
    steps = 150
    long_job = submit(
        live.client,
        kind="image",
        prompt="slow",
        params={"width": 512, "height": 512, "steps": steps},
    )
    wait_for_job(live.client, long_job["id"], until={"running"})
    assert live.client.post(f"/v1/jobs/{long_job['id']}/cancel").status_code == 200
    # The worker is free again and takes the next job.
    follower = submit(live.client, kind="text", model="echo", prompt="next")
    assert wait_for_job(live.client, follower["id"])["status"] == "succeeded"
    canceled = live.client.get(f"/v1/jobs/{long_job['id']}").json()
    assert canceled["status"] == "canceled"
    assert canceled["artifacts"] == []
    # Its worker recorded the step it stopped at: not the last one.
    assert canceled["progress"] is None or canceled["progress"]["done"] < steps


def test_odd_path_ids_over_real_http(live: LiveStack) -> None:
    # Through uvicorn, not only the in-process client: the server's own parsing of odd
    # paths ends in our JSON errors too.
    for ident in ("%00", "abc%00def", "%ff%fe", "%E2%80%AE", "x" * 8000, "%2e%2e"):
        for method, path in (("GET", f"/v1/jobs/{ident}"), ("POST", f"/v1/batches/{ident}/cancel")):
            response = live.client.request(method, path)
            assert response.status_code in (404, 422), (ident[:12], response.text)
            assert response.json()["error"]["type"] in ("not_found", "invalid_request")
