"""The API's /metrics: request counts and latency by route template (never the raw path, so
job ids do not multiply the series), method and status, from
prometheus-fastapi-instrumentator. Served behind AIGC_METRICS_TOKEN when it is set; without
it the page is open, as it carries no team data. Cheap: no database query per scrape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator, metrics

from aigc.errors import Unauthorized
from aigc.metrics import METRICS_PATH, SECONDS_BUCKETS, authorized, render
from aigc.settings import Settings

router = APIRouter(tags=["metrics"])


@router.get(METRICS_PATH, include_in_schema=False)
def prometheus_metrics(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus text format; `Authorization: Bearer <AIGC_METRICS_TOKEN>` when one is set."""
    settings: Settings = request.app.state.settings
    if not authorized(settings.metrics_token, authorization):
        raise Unauthorized()
    return Response(render(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Instrument every route and serve /metrics. Call after the other middleware is added,
    so the instrumentation is outermost and counts the requests they refuse (413) too."""
    # A registry per app: tests build many apps in one process, and in multiprocess mode
    # (uvicorn --workers) the values live in files anyway.
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    Instrumentator(
        should_group_status_codes=False,
        # Latency until the response starts: an event stream open for an hour is not an
        # hour-long request, and a download's length is the client's network, not ours.
        should_exclude_streaming_duration=True,
        excluded_handlers=[METRICS_PATH],
        registry=registry,
    ).add(
        metrics.requests(metric_namespace="aigc", registry=registry),
        metrics.latency(
            metric_namespace="aigc",
            buckets=SECONDS_BUCKETS,
            should_exclude_streaming_duration=True,
            registry=registry,
        ),
    ).instrument(app)
    app.include_router(router)
