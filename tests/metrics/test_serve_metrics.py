"""aigc.metrics.serve_metrics, the small server of processes without a web app of their own
(worker, dispatcher, deliverer): a real HTTP server on a free port, behind the token."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from aigc.metrics import WEBHOOK_DELIVERIES, MetricsServer, serve_metrics
from tests.metrics.live import scrape, value

TOKEN = "a-metrics-token-for-tests-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    server = serve_metrics(0, token=SecretStr(TOKEN))
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def url(server: MetricsServer, path: str = "/metrics") -> str:
    return f"http://127.0.0.1:{server.server_port}{path}"


def test_the_webhook_deliverers_series_are_served(server: MetricsServer) -> None:
    before = value(scrape(url(server), AUTH), "aigc_webhook_deliveries_total", outcome="failed")
    WEBHOOK_DELIVERIES.labels("failed").inc()
    samples = scrape(url(server), AUTH)
    assert value(samples, "aigc_webhook_deliveries_total", outcome="failed") == (before or 0) + 1
    assert value(samples, "aigc_webhook_delivery_seconds_count") is not None


def test_only_metrics_and_only_with_the_token(server: MetricsServer) -> None:
    assert httpx.get(url(server)).status_code == 401
    assert httpx.get(url(server), headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    assert httpx.get(url(server, "/"), headers=AUTH).status_code == 404
    assert httpx.get(url(server, "/metrics/../etc"), headers=AUTH).status_code == 404


def test_a_registry_of_ones_own() -> None:
    registry = CollectorRegistry()
    server = serve_metrics(0, registry=registry)
    try:
        samples = scrape(url(server), {})
    finally:
        server.shutdown()
        server.server_close()
    assert value(samples, "aigc_webhook_deliveries_total") is None
