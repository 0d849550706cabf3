"""`aigc demo`: one text, one image and one audio job through the real stack."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from aigc.cli.common import EXTENSIONS, TINY_NOTICE, MissingApiKey, api_key, api_key_path
from aigc.client import ApiError, Client, Job
from aigc.settings import Settings
from aigc.vocab import FINAL_JOB_STATUSES, JobStatus

DEMO_JOBS: list[dict[str, Any]] = [
    {
        "kind": "text",
        "prompt": "Write a short article on the prospects of AIGC technology for content teams.",
        "params": {"max_new_tokens": 200, "seed": 7},
        "metadata": {"source": "aigc demo"},
    },
    {
        "kind": "image",
        "prompt": "A lighthouse on a cliff at sunrise, watercolor",
        "params": {"seed": 7},
        "metadata": {"source": "aigc demo"},
    },
    {
        "kind": "audio",
        "prompt": "Welcome to aigc jobs. Your content is ready.",
        "params": {"seed": 7},
        "metadata": {"source": "aigc demo"},
    },
]


def _running_api(url: str) -> bool:
    with Client(url) as client:
        return client.healthy()


def _facts(artifact: dict[str, Any]) -> str:
    skip = {"id", "index", "url", "sha256"}
    return ", ".join(f"{k}={v}" for k, v in artifact.items() if k not in skip and v is not None)


def _bar_state(job: dict[str, Any]) -> dict[str, Any]:
    """A job's progress bar: its steps done of the total while it runs, full once it ended."""
    description = f"{job['kind']} job: {job['status']}"
    progress = job.get("progress") or {}
    total, done = progress.get("total") or 1, progress.get("done") or 0
    if job["status"] in FINAL_JOB_STATUSES:
        done = total
    steps = f"{done}/{total} steps" if progress else ""
    return {"description": description, "total": total, "completed": done, "steps": steps}


def run_demo(settings: Settings, console: Console, *, timeout_s: float) -> int:
    """Returns the process exit code: 0 when every job succeeded."""
    with ExitStack() as cleanup:
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        if _running_api(api_url):
            console.print(f"using the running API at {api_url}")
        else:
            from aigc.cli.stack import run_stack

            log_dir = settings.var_dir / "logs"
            console.print(f"starting the stack (API, worker, dispatcher; logs in {log_dir}/)...")
            stack = cleanup.enter_context(run_stack(settings, flower=False, log_dir=log_dir))
            api_url = stack.api_url
            console.print(f"your API key (admin, team default) is in {stack.api_key_file}")
        try:
            key = api_key(settings)
        except MissingApiKey as exc:
            console.print(f"[red]{exc}[/]", highlight=False)
            return 1
        if settings.profile == "offline":
            console.print(f"[yellow]{TINY_NOTICE}[/]")
        client = cleanup.enter_context(Client(api_url, key))
        outcome = _submit_and_follow(client, console, settings.var_dir / "demo", timeout_s)
        if outcome == 0:
            console.print(
                f"Next: `make up`, open {api_url}/ui and sign in with the key in "
                f"{api_key_path(settings)} to run a batch from a CSV file.",
                highlight=False,
            )
        return outcome
    return 1  # unreachable: ExitStack does not swallow exceptions


def _submit_and_follow(client: Client, console: Console, out_dir: Path, timeout_s: float) -> int:
    jobs: dict[str, dict[str, Any]] = {}
    for body in DEMO_JOBS:
        try:
            submitted = client.submit(**body)
        except (ApiError, httpx.HTTPError) as exc:
            message = f"submitting the {body['kind']} job failed: {exc}"
            console.print(message, style="red", markup=False)
            return 1
        jobs[submitted.id] = submitted.model_dump(mode="json")
        console.print(f"submitted {submitted.kind} job {submitted.id} (model {submitted.model})")

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[steps]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        # One bar per job, advancing with the steps (tokens, denoising steps) its worker
        # reports while it runs, as the job's event stream tells them.
        bars = {job_id: progress.add_task("", total=1, steps="") for job_id in jobs}

        failures: list[str] = []

        def follow_job(job_id: str) -> None:
            job = jobs[job_id]
            try:
                for name, data in client.job_events(job_id):
                    # The first and last events carry the whole job, the others what changed.
                    job = data if name in ("status", "completed") else {**job, **data}
                    jobs[job_id] = job
                    progress.update(bars[job_id], **_bar_state(job))
            except (httpx.HTTPError, ApiError) as exc:
                failures.append(f"following {job['kind']} job {job_id} failed: {exc}")

        # Daemon threads: a stream still open at the timeout does not keep the CLI alive.
        followers = [
            threading.Thread(target=follow_job, args=(job_id,), daemon=True) for job_id in jobs
        ]
        for thread in followers:
            thread.start()
        deadline = time.monotonic() + timeout_s
        for thread in followers:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in followers):
            console.print(f"[red]jobs did not finish within {timeout_s:.0f}s[/]")
            return 1
        for failure in failures:
            console.print(f"[red]{failure}[/]")
        if failures:
            return 1

    out_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    for job in (Job.model_validate(data) for data in jobs.values()):
        if job.status != JobStatus.SUCCEEDED:
            failed += 1
            reason = f"{job.error.code}: {job.error.message}" if job.error else f"{job.status}: "
            console.print(f"[red]{job.kind} job {job.id} {job.status}: {reason}[/]")
            continue
        for artifact in job.artifacts:
            extension = EXTENSIONS.get(artifact.mime_type, "bin")
            path = client.download(
                artifact, out_dir / f"{job.kind}-{job.id}-{artifact.index}.{extension}"
            )
            facts = _facts(artifact.model_dump(mode="json"))
            console.print(f"[green]{job.kind}[/] {path}  ({facts})")
            if job.kind == "text":
                preview = path.read_text(encoding="utf-8")[:160].replace("\n", " ")
                console.print(f"    “{preview}…”")
    if failed:
        console.print(f"[red]{failed} of {len(jobs)} demo jobs did not succeed[/]")
        return 1
    console.print("[bold green]all demo jobs succeeded[/]")
    console.print(f"Each carries a signed AI-generated label: `aigc verify {out_dir}/<file>`")
    return 0
