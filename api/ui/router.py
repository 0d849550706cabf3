"""The /ui routes. The shell pages carry no data and need no key; every fragment under
/ui/parts is authenticated and team-scoped like the /v1 routes it mirrors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from aigc.errors import InvalidRequest, NotFound
from aigc.settings import Settings
from aigc.storage import ArtifactStore
from aigc.tabular import rows_to_jobs
from aigc.vocab import DEFAULT_BATCH_PRIORITY, FINAL_BATCH_STATUSES, JobStatus, Kind, Priority
from api.auth import CallerDep, authenticate
from api.deps import CatalogDep, SessionDep, SettingsDep, StoreDep
from api.downloads import is_expired
from api.routes.batches import batch_public
from api.schemas import BatchPublic, JobPublic
from api.serialize import job_public
from api.ui.preview import preview_upload
from api.ui.queries import search_batch_jobs
from api.ui.tables import read_table
from db import batches as batch_queries
from db.tables import Job

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["age"] = lambda since: age(datetime.now(UTC) - since)
templates.env.globals["final_statuses"] = FINAL_BATCH_STATUSES
static_files = StaticFiles(directory=HERE / "static")

BATCHES_SHOWN = 50  # the newest batches on the list; older ones through the API
ITEMS_SHOWN = 100  # a batch page's grid; the search and filter narrow a larger batch
PREVIEW_CHARS = 2000  # of each text artifact, read from the store for its card
FOLLOWED_BATCHES = 2  # running batches whose streams the list follows; with more, it polls
ERRORS_SHOWN = 50  # of an upload's bad rows, on its preview
MAX_SEARCH_CHARS = 200
MAX_FILE_NAME_CHARS = 255

pages = APIRouter(prefix="/ui", include_in_schema=False)
parts = APIRouter(prefix="/ui/parts", include_in_schema=False, dependencies=[Depends(authenticate)])


def age(elapsed: timedelta) -> str:
    """A wait in the largest unit that fits: "40 s", "12 min", "3 h", "2 d"."""
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@dataclass(frozen=True)
class Item:
    job: JobPublic
    previews: dict[uuid.UUID, str]  # text artifacts' first characters, by artifact id


def card_item(request: Request, settings: Settings, store: ArtifactStore, job: Job) -> Item:
    """A job as its card (parts/item.html) shows it, on a batch's grid or its own page."""
    previews = {}
    for artifact in job.artifacts:
        if job.kind == Kind.TEXT and not is_expired(artifact.expires_at):
            with store.open(artifact.storage_key) as f:
                head = f.read(PREVIEW_CHARS * 4)  # UTF-8: at most 4 bytes a character
            previews[artifact.id] = head.decode("utf-8", errors="replace")[:PREVIEW_CHARS]
    return Item(job_public(request, settings, job), previews)


def _shell(request: Request, start: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "shell.html", {"start": start})


@pages.get("")
def batches_page(request: Request) -> HTMLResponse:
    return _shell(request, "/ui/parts/batches")


@pages.get("/batches/{batch_id}")
def batch_page(request: Request, batch_id: uuid.UUID) -> HTMLResponse:
    return _shell(request, f"/ui/parts/batches/{batch_id}")


@parts.get("/batches")
def batches_part(request: Request, session: SessionDep, caller: CallerDep) -> HTMLResponse:
    return _batch_list(request, session, caller, "parts/batches.html")


@parts.get("/batches/list")
def batch_list_part(request: Request, session: SessionDep, caller: CallerDep) -> HTMLResponse:
    return _batch_list(request, session, caller, "parts/batch_list.html")


def _batch_list(
    request: Request, session: SessionDep, caller: CallerDep, template: str
) -> HTMLResponse:
    batches = batch_queries.list_batches(session, limit=BATCHES_SHOWN)
    counts = batch_queries.batch_counts(session, batches)
    shown = [batch_public(batch, counts[batch.id]) for batch in batches]
    return templates.TemplateResponse(
        request,
        template,
        {
            "priorities": list(Priority),
            "default_priority": DEFAULT_BATCH_PRIORITY,
            "team": caller.team_name,
            "batches": shown,
            "live": any(batch.status not in FINAL_BATCH_STATUSES for batch in shown),
            "followed": _followed(shown),
        },
    )


def _followed(batches: list[BatchPublic]) -> list[uuid.UUID]:
    """The running batches whose event streams refresh the list, or none when more run: a
    browser holds six connections to a server, and each stream keeps one."""
    running = [batch.id for batch in batches if batch.status not in FINAL_BATCH_STATUSES]
    return running if len(running) <= FOLLOWED_BATCHES else []


def _load(session: SessionDep, batch_id: uuid.UUID) -> BatchPublic:
    batch = batch_queries.get_batch(session, batch_id)
    if batch is None:
        raise NotFound("batch", batch_id)
    return batch_public(batch, batch_queries.batch_counts(session, [batch])[batch.id])


@parts.get("/batches/{batch_id}")
def batch_part(request: Request, batch_id: uuid.UUID, session: SessionDep) -> HTMLResponse:
    batch = _load(session, batch_id)
    return templates.TemplateResponse(
        request,
        "parts/batch.html",
        {
            "batch": batch,
            "statuses": list(JobStatus),
            "live": batch.status not in FINAL_BATCH_STATUSES,
        },
    )


@parts.get("/batches/{batch_id}/summary")
def summary_part(request: Request, batch_id: uuid.UUID, session: SessionDep) -> HTMLResponse:
    batch = _load(session, batch_id)
    return templates.TemplateResponse(
        request,
        "parts/summary.html",
        {"batch": batch, "live": batch.status not in FINAL_BATCH_STATUSES},
    )


def _status(status: str) -> JobStatus | None:
    if not status:
        return None
    try:
        return JobStatus(status)
    except ValueError:
        allowed = ", ".join(JobStatus)
        raise InvalidRequest.from_errors(
            [{"field": "status", "message": f"must be one of {allowed}, or empty for all"}]
        ) from None


@parts.get("/batches/{batch_id}/items")
def items_part(
    request: Request,
    batch_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    status: Annotated[str, Query(max_length=16)] = "",
    q: Annotated[str, Query(max_length=MAX_SEARCH_CHARS)] = "",
) -> HTMLResponse:
    batch = _load(session, batch_id)
    jobs = search_batch_jobs(
        session, batch_id, limit=ITEMS_SHOWN, status=_status(status), text=q.strip()
    )
    items = [card_item(request, settings, store, job) for job in jobs]
    return templates.TemplateResponse(
        request,
        "parts/items.html",
        {
            "batch": batch,
            "live": batch.status not in FINAL_BATCH_STATUSES,
            "items": items,
            "shown": ITEMS_SHOWN,
            "filtered": bool(status or q.strip()),
        },
    )


@parts.post("/tables/preview")
async def table_preview(
    request: Request,
    settings: SettingsDep,
    catalog: CatalogDep,
    name: Annotated[str, Query(min_length=1, max_length=MAX_FILE_NAME_CHARS)],
) -> HTMLResponse:
    """An uploaded CSV, XLSX or JSONL file (the body) checked as POST /v1/batches would
    check it: its column mapping, first jobs and every bad row."""
    data = await request.body()
    preview = await run_in_threadpool(preview_upload, name, data, settings, catalog)
    return templates.TemplateResponse(
        request,
        "parts/table_preview.html",
        {"preview": preview, "name": name, "errors_shown": ERRORS_SHOWN},
    )


@parts.post("/tables")
async def table_jobs(
    request: Request,
    settings: SettingsDep,
    name: Annotated[str, Query(min_length=1, max_length=MAX_FILE_NAME_CHARS)],
) -> dict[str, list[dict[str, Any]]]:
    """An uploaded CSV or XLSX (the body; at most max_request_bytes) as `{"jobs": [...]}`,
    the body the page then sends to POST /v1/batches. A bad file or row is a 422 on
    `file` saying which row and column."""
    data = await request.body()
    try:
        rows = await run_in_threadpool(read_table, name, data, max_rows=settings.max_batch_jobs)
        jobs = rows_to_jobs(rows)
    except ValueError as exc:
        raise InvalidRequest.from_errors([{"field": "file", "message": str(exc)}]) from None
    return {"jobs": jobs}
