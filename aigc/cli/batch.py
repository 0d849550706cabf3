"""`aigc batch`: submit a JSONL file of jobs, follow it, cancel it, collect its results."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from aigc.cli.common import (
    EXIT_FAILED,
    EXTENSIONS,
    MissingApiKey,
    api_key,
    console,
    err_console,
)
from aigc.client import ApiError, Batch, ChecksumMismatch, Client, InvalidRequest, ResultLine
from aigc.client.models import Artifact
from aigc.errors import ErrorCode
from aigc.jsonl import BadLine, decode_line, iter_lines
from aigc.settings import get_settings
from aigc.vocab import FINAL_JOB_STATUSES, BatchStatus, JobStatus, Priority

batch_app = typer.Typer(
    help="Batches of jobs from a JSONL file: submit, follow, cancel, download the results.",
    no_args_is_help=True,
)

# Exit codes: EXIT_FAILED for a batch that did not fully succeed or an API that cannot be
# used, 2 for an input file that was refused (the convention of command-line usage errors).
EXIT_INVALID = 2
SUBMIT_TIMEOUT_S = 300.0  # a 50,000-line upload is validated and stored before the answer
MAX_LINE_ERRORS_SHOWN = 50
MAX_NAME_CHARS = 80

ApiUrl = Annotated[
    str | None,
    typer.Option(
        "--api-url",
        help="Base URL of the API; defaults to http://AIGC_API_HOST:AIGC_API_PORT.",
        show_default=False,
    ),
]


def _api_url(api_url: str | None) -> str:
    settings = get_settings()
    return (api_url or f"http://{settings.api_host}:{settings.api_port}").rstrip("/")


@contextmanager
def _api(api_url: str | None, timeout_s: float = 30.0) -> Iterator[Client]:
    """An SDK client for the API, with the key; a missing key, connection problems and API
    errors end the command with one line instead of a traceback."""
    base_url = _api_url(api_url)
    try:
        key = api_key(get_settings())
    except MissingApiKey as exc:
        err_console.print(f"[red]{exc}", highlight=False)
        raise typer.Exit(EXIT_FAILED) from exc
    try:
        with Client(base_url, key, timeout_s=timeout_s) as client:
            yield client
    except httpx.TransportError as exc:
        err_console.print(f"[red]cannot reach the API at {base_url}: {exc or type(exc).__name__}")
        raise typer.Exit(EXIT_FAILED) from exc
    except (ApiError, ChecksumMismatch) as exc:
        err_console.print(str(exc), style="red", markup=False)
        raise typer.Exit(EXIT_FAILED) from exc


# Checking the file before it is sent -------------------------------------------------------


def validate_jsonl(data: bytes) -> list[dict[str, Any]]:
    """The server's checks that do not depend on its configuration: each line a JSON object
    of the batch job schema with a unique custom_id and params within the kind's bounds.
    Returns [{"line", "field", "message"}], empty when the file looks acceptable; the
    server's answer stays authoritative (models, size limits)."""
    errors: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for number, raw in iter_lines(data):
        try:
            value = decode_line(raw, max_bytes=get_settings().max_jsonl_line_bytes)
        except BadLine as exc:
            errors += [_line_error(number, e["field"], e["message"]) for e in exc.errors]
            continue
        errors += _job_errors(number, value)
        custom_id = value.get("custom_id")
        if custom_id is None:
            errors.append(_line_error(number, "custom_id", "is required in a JSONL batch"))
        elif isinstance(custom_id, str) and first_line.setdefault(custom_id, number) != number:
            message = f"duplicates the custom_id of line {first_line[custom_id]}"
            errors.append(_line_error(number, "custom_id", message))
    if not errors and not first_line:
        errors.append(_line_error(0, "jobs", "the batch has no jobs"))
    return errors


def _job_errors(number: int, value: dict[str, Any]) -> list[dict[str, Any]]:
    """What is wrong with a line's object as a job of a batch."""
    # Imported here: `aigc batch status` and friends need none of this.
    from api.errors import invalid_request
    from api.schemas import BatchJobCreate
    from models.params import PARAMS_BY_KIND

    try:
        job = BatchJobCreate.model_validate(value)
        # A kind's bounds are the same whichever model runs it; only defaults differ.
        PARAMS_BY_KIND[job.kind].model_validate(job.params or {})
    except ValidationError as exc:
        prefix = "params." if exc.title in {p.__name__ for p in PARAMS_BY_KIND.values()} else ""
        invalid = invalid_request(exc, prefix=prefix)
        return [_line_error(number, e["field"], e["message"]) for e in invalid.errors or []]
    return []


def _line_error(line: int, field: str, message: str) -> dict[str, Any]:
    return {"line": line, "field": field, "message": message}


def _print_line_errors(errors: list[dict[str, Any]], total: int | None = None) -> None:
    total = len(errors) if total is None else total
    err_console.print(f"[red]{total} error(s); nothing was submitted:")
    for error in errors[:MAX_LINE_ERRORS_SHOWN]:
        where = f"line {error['line']}" if error.get("line") else "batch"
        err_console.print(f"  {where}: {error['field']}: {error['message']}", markup=False)
    if total > MAX_LINE_ERRORS_SHOWN:
        err_console.print(f"  ... and {total - MAX_LINE_ERRORS_SHOWN} more")


# submit ------------------------------------------------------------------------------------


@batch_app.command()
def submit(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="JSONL, one job a line."),
    ],
    priority: Annotated[
        str | None,
        typer.Option(help="high, normal or low; unset, the server's default for batches (low)."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the batch until it finishes.")] = False,
    webhook: Annotated[
        str | None,
        typer.Option(help="An https URL the batch's events are POSTed to, signed (see README)."),
    ] = None,
    webhook_event: Annotated[
        list[str] | None,
        typer.Option(
            help="Which events go to --webhook: start, progress, completed, job_completed "
            "(repeatable; default completed)."
        ),
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Check FILE line by line, submit it as one batch, print the batch id.

    A bad line stops everything before submitting (exit 2). With --wait, show progress until
    the batch finishes: exit 0 when every job succeeded, 1 otherwise."""
    if priority is not None and priority not in set(Priority):
        raise typer.BadParameter(f"choose from {', '.join(Priority)}", param_hint="--priority")
    data = file.read_bytes()
    errors = validate_jsonl(data)
    if errors:
        _print_line_errors(errors)
        raise typer.Exit(EXIT_INVALID)
    with _api(api_url, timeout_s=SUBMIT_TIMEOUT_S) as client:
        batch = _submit(client, data, priority, webhook, webhook_event)
        console.print(batch.id, highlight=False)
        err_console.print(f"{batch.counts.total} jobs queued ({batch.priority} priority)")
        if not wait:
            return
        batch = _follow(client, batch)
    _print_counts(batch)
    if batch.status != BatchStatus.COMPLETED or batch.counts.total != batch.counts.succeeded:
        raise typer.Exit(EXIT_FAILED)


def _submit(
    client: Client,
    data: bytes,
    priority: str | None,
    webhook: str | None = None,
    webhook_events: list[str] | None = None,
) -> Batch:
    try:
        return client.submit_batch(
            data, priority=priority, webhook=webhook, webhook_events=webhook_events
        )
    except InvalidRequest as exc:
        if exc.code != ErrorCode.INVALID_BATCH or not exc.field_errors:
            raise
        # The server lists at most 1,000 bad lines and counts them all.
        _print_line_errors([e.model_dump() for e in exc.field_errors], exc.error_count)
        raise typer.Exit(EXIT_INVALID) from exc


class _RateColumn(ProgressColumn):
    """Jobs finished per second, over rich's recent-samples window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} jobs/s" if speed else "- jobs/s", style="progress.data.speed")


def _follow(client: Client, batch: Batch) -> Batch:
    """Follow the batch's event stream until it finishes, with a live progress bar."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        bar = progress.add_task(batch.status, total=batch.counts.total, failed=0)

        def show(batch: Batch) -> None:
            counts = batch.counts.model_dump()
            done = sum(counts[status] for status in FINAL_JOB_STATUSES)
            progress.update(bar, completed=done, description=batch.status, failed=counts["failed"])

        show(batch)
        for name, data in client.batch_events(batch.id):
            if name == "job_completed":
                # Between two counts from the server: one more job done.
                failed = progress.tasks[bar].fields["failed"]
                failed += data["status"] == JobStatus.FAILED
                progress.update(bar, advance=1, failed=failed)
                continue
            batch = Batch.model_validate(data)
            show(batch)
            if name == "completed":
                return batch
    # The stream ended early (the server went away for good): the batch as it is now.
    return client.get_batch(batch.id)


def _print_counts(batch: Batch) -> None:
    counts = batch.counts.model_dump()
    summary = ", ".join(f"{counts[s]} {s}" for s in FINAL_JOB_STATUSES if counts[s])
    style = "green" if batch.counts.succeeded == batch.counts.total else "red"
    err_console.print(f"[{style}]batch {batch.id} {batch.status}: {summary or 'no jobs run'}")


# status, cancel ----------------------------------------------------------------------------


@batch_app.command()
def status(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")], api_url: ApiUrl = None
) -> None:
    """The batch's status, job counts and timestamps."""
    with _api(api_url) as client:
        batch = client.get_batch(batch_id)
    console.print(_batch_table(batch))


def _batch_table(typed: Batch) -> Table:
    batch = typed.model_dump(mode="json")  # timestamps as the API writes them
    table = Table(title=f"batch {batch['id']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", batch["status"])
    table.add_row("priority", batch["priority"])
    for name, count in batch["counts"].items():
        table.add_row(name, f"{count:,}")
    for stamp in ("created_at", "started_at", "finished_at", "cancel_requested_at"):
        table.add_row(stamp, batch.get(stamp) or "-")
    return table


@batch_app.command()
def cancel(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")], api_url: ApiUrl = None
) -> None:
    """Cancel the batch: queued jobs never run, running ones stop at their next step."""
    with _api(api_url) as client:
        batch = client.cancel_batch(batch_id)
    console.print(f"batch {batch.id} {batch.status}")
    console.print(_batch_table(batch))


# results -----------------------------------------------------------------------------------


@batch_app.command()
def results(
    batch_id: Annotated[str, typer.Argument(help="The batch id.")],
    out: Annotated[
        Path, typer.Option("-o", "--out", file_okay=False, help="Directory to write into.")
    ],
    api_url: ApiUrl = None,
) -> None:
    """Download the batch's results and artifacts into a directory.

    Writes OUT/results.jsonl and each artifact as OUT/<line>-<custom_id>-<index>.<ext>.
    Files already there with the right checksum are kept, so a rerun resumes."""
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    with _api(api_url) as client:
        lines = _download_results(client, batch_id, results_path)
        artifacts = [(line, artifact) for line in lines for artifact in line.artifacts]
        with Progress(*_download_columns(), console=err_console) as progress:
            bar = progress.add_task("artifacts", total=len(artifacts))
            for line, artifact in artifacts:
                _save_artifact(client, out / artifact_filename(line, artifact), artifact)
                progress.advance(bar)
    failed = sum(line.status != JobStatus.SUCCEEDED for line in lines)
    console.print(f"{len(lines)} results in {results_path}, {len(artifacts)} artifacts in {out}")
    if failed:
        err_console.print(f"[red]{failed} job(s) did not succeed; see {results_path}")


def _download_columns() -> tuple[ProgressColumn, ...]:
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def _download_results(client: Client, batch_id: str, path: Path) -> list[ResultLine]:
    """Stream the results JSONL to `path` (via a temporary name, so a partial download never
    passes for a whole one) and return its decoded lines."""
    lines = []
    partial = path.with_suffix(".jsonl.part")
    with partial.open("w", encoding="utf-8") as f:
        for text in client.batch_results_raw(batch_id):
            f.write(text + "\n")
            lines.append(ResultLine.model_validate_json(text))
    partial.replace(path)
    return lines


def safe_name(custom_id: str | None) -> str:
    """A custom_id made safe as part of a file name: no separators, no "..", bounded."""
    name = re.sub(r"[^A-Za-z0-9._-]|\.\.", "_", custom_id or "")
    name = re.sub(r"_+", "_", name).strip("._")[:MAX_NAME_CHARS]
    return name or "job"


def artifact_filename(line: ResultLine, artifact: Artifact) -> str:
    extension = EXTENSIONS.get(artifact.mime_type, "bin")
    return f"{line.line}-{safe_name(line.custom_id)}-{artifact.index}.{extension}"


def _save_artifact(client: Client, path: Path, artifact: Artifact) -> None:
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == artifact.sha256:
        return
    # Text comes inline in the results, so the SDK makes no request per text artifact.
    client.download(artifact, path)
