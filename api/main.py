"""Builds the FastAPI app: settings, clients and routers wired in one place."""

from __future__ import annotations

import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from aigc.catalog import build_catalog
from aigc.connections import broker_client, database_engine
from aigc.content_credentials import ContentCredentials, Credentials
from aigc.labels.keys import label_signer
from aigc.metrics import mark_dead
from aigc.settings import Settings, get_settings
from aigc.signing import UrlSigner
from aigc.storage import open_store
from api.errors import install_error_handlers
from api.event_hub import EventHub
from api.limits import BodySizeLimit
from api.metrics import install_metrics
from api.openapi import install_docs, operation_id
from api.routes import (
    admin,
    archive,
    artifacts,
    batches,
    events,
    files,
    health,
    jobs,
    models,
    moderation,
    verify,
    webhooks,
)
from api.ui import job_pages
from api.ui.router import pages, parts, static_files
from db.session import make_session_factory


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Everything built at startup lives as long as the process: out of the collector's
    # sight, a full collection during a 50,000-line batch no longer walks it again.
    gc.freeze()
    yield
    # The pooled connections go back to the servers when the app stops, not when the
    # process exits: a test suite builds many apps on one shared PostgreSQL.
    app.state.event_hub.close()
    app.state.engine.dispose()
    app.state.broker_client.close()
    # One of several uvicorn workers: its live gauges leave the group's totals with it.
    mark_dead(os.getpid())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="aigc-jobs",
        version="0.1.0",
        description="Submit text, image and audio generation jobs; poll them; download artifacts.",
        generate_unique_id_function=operation_id,
        # Served by install_docs with local assets instead of FastAPI's CDN-backed pages.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = database_engine(settings)
    app.state.session_factory = make_session_factory(app.state.engine)
    app.state.catalog = build_catalog(settings)
    app.state.store = open_store(settings)
    app.state.broker_client = broker_client(settings)
    # Started by the first event stream: a process nobody follows holds no LISTEN.
    app.state.event_hub = EventHub(
        app.state.engine,
        app.state.session_factory,
        poll_s=settings.events_poll_s,
        max_streams_per_team=settings.max_event_streams_per_team,
    )
    # Fails the start, saying why, when no signing key can be had (aigc.signing).
    app.state.url_signer = UrlSigner.from_settings(settings)
    # The same for the label key (aigc.labels.keys): job responses and /v1/verify sign with it.
    app.state.label_signer = label_signer(settings)
    # /v1/verify checks C2PA manifests against the deployment's trust anchors.
    app.state.content_credentials = ContentCredentials(
        Credentials.from_settings(settings), settings.label_producer
    )
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        default_bytes=settings.max_request_bytes,
        upload_bytes=settings.max_batch_bytes,
    )
    install_metrics(app)
    for module in (
        jobs,
        batches,
        archive,
        events,
        files,
        artifacts,
        models,
        webhooks,
        verify,
        admin,
        moderation,
        health,
    ):
        app.include_router(module.router)
    app.include_router(pages)
    app.include_router(parts)
    app.include_router(job_pages.pages)
    app.include_router(job_pages.parts)
    app.mount("/ui/static", static_files, name="ui_static")
    install_docs(app)
    return app
