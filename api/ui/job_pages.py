"""The /ui pages of single jobs: the form that submits one (its parameters rendered from
the schemas /v1/models serves) and a job's own page, updated live until the job ends."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from aigc.errors import NotFound
from aigc.vocab import DEFAULT_JOB_PRIORITY, FINAL_JOB_STATUSES, Kind, Priority
from api.auth import authenticate
from api.deps import CatalogDep, SessionDep, SettingsDep, StoreDep
from api.ui.param_fields import param_fields
from api.ui.router import _shell, card_item, templates
from db import jobs as job_queries
from models.registry import ModelSpec

MAX_MODEL_CHARS = 256  # as JobRequest.model

pages = APIRouter(prefix="/ui", include_in_schema=False)
parts = APIRouter(prefix="/ui/parts", include_in_schema=False, dependencies=[Depends(authenticate)])

ModelQuery = Annotated[str, Query(min_length=1, max_length=MAX_MODEL_CHARS)]


@pages.get("/jobs/new")
def job_form_page(request: Request) -> HTMLResponse:
    return _shell(request, "/ui/parts/jobs/new")


@pages.get("/jobs/{job_id}")
def job_page(request: Request, job_id: uuid.UUID) -> HTMLResponse:
    return _shell(request, f"/ui/parts/jobs/{job_id}")


def _model_context(catalog: CatalogDep, spec: ModelSpec) -> dict[str, Any]:
    return {
        "models": catalog.names(spec.kind),
        "spec": spec,
        "fields": param_fields(spec.params_schema()),
    }


@parts.get("/jobs/new")
def job_form_part(
    request: Request, catalog: CatalogDep, settings: SettingsDep, kind: Kind = Kind.TEXT
) -> HTMLResponse:
    """The form for one job of `kind`, its default model's parameters filled in."""
    return templates.TemplateResponse(
        request,
        "parts/job_form.html",
        {
            "kinds": list(Kind),
            "kind": kind,
            "priorities": list(Priority),
            "default_priority": DEFAULT_JOB_PRIORITY,
            "max_prompt_chars": settings.max_prompt_chars,
            **_model_context(catalog, catalog.resolve(kind, None)),
        },
    )


@parts.get("/jobs/models")
def job_models_part(request: Request, catalog: CatalogDep, kind: Kind) -> HTMLResponse:
    """The model choice for another kind, with its default model's parameters."""
    return templates.TemplateResponse(
        request, "parts/job_model.html", _model_context(catalog, catalog.resolve(kind, None))
    )


@parts.get("/jobs/params")
def job_params_part(request: Request, catalog: CatalogDep, model: ModelQuery) -> HTMLResponse:
    """The inputs for a model's parameters; an unknown model is a 404 naming `model`."""
    spec = catalog.lookup(model)
    if spec is None:
        raise NotFound("model", model, field="model")
    return templates.TemplateResponse(
        request, "parts/job_params.html", _model_context(catalog, spec)
    )


def _card(
    request: Request,
    job_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    template: str,
) -> HTMLResponse:
    job = job_queries.get_job(session, job_id)
    if job is None:
        raise NotFound("job", job_id)
    return templates.TemplateResponse(
        request,
        template,
        {
            "item": card_item(request, settings, store, job),
            "live": job.status not in FINAL_JOB_STATUSES,
            "details_open": True,
        },
    )


@parts.get("/jobs/{job_id}")
def job_part(
    request: Request,
    job_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> HTMLResponse:
    """A job's page: its card, times, prompt and params."""
    return _card(request, job_id, session, settings, store, "parts/job.html")


@parts.get("/jobs/{job_id}/card")
def job_card_part(
    request: Request,
    job_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
) -> HTMLResponse:
    """The part of a job's page that changes while it runs; live.js asks for it again at
    each of the job's events until the job ends."""
    return _card(request, job_id, session, settings, store, "parts/job_card.html")
