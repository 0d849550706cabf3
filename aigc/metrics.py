"""Prometheus metrics every process shares: how a process renders its registry (one process,
or all the processes of a group in multiprocess mode), the bearer-token check in front of
every /metrics, a small HTTP server for processes that have no web app of their own
(worker, dispatcher, deliverer), and the webhook deliverer's metrics. No torch here: the
API imports this module."""

from __future__ import annotations

import hmac
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pydantic import SecretStr

log = logging.getLogger(__name__)

# prometheus_client switches every metric of a process to files in this directory when the
# variable is set before it is imported: the mode for process groups (uvicorn --workers).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"

# Latency buckets in seconds, from a cached status read (ms) to a model load or a long
# generation (minutes).
SECONDS_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)

WEBHOOK_DELIVERIES = Counter(
    "aigc_webhook_deliveries_total",
    "Webhook delivery attempts by outcome: delivered, retrying (failed, will retry) or "
    "failed (gave up).",
    ["outcome"],
)
WEBHOOK_DELIVERY_SECONDS = Histogram(
    "aigc_webhook_delivery_seconds",
    "Seconds one webhook delivery attempt took, until the receiver answered or failed.",
    buckets=SECONDS_BUCKETS,
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir(path: Path) -> None:
    """Empty `path` and point this process and its children at it. Called by the parent of
    a process group before any child starts: files left by an earlier run would add the
    dead processes' counts to the new ones."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, mode=0o700)
    os.environ[MULTIPROC_ENV] = str(path)


def mark_dead(pid: int) -> None:
    """Drop a process's live gauges from the group's totals when it exits."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def exposition_registry(registry: CollectorRegistry = REGISTRY) -> CollectorRegistry:
    """What /metrics renders: `registry`, or in multiprocess mode the merged files of every
    process of the group (custom collectors do not cross processes, so only a process
    without children registers any)."""
    directory = multiprocess_dir()
    if directory is None:
        return registry
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return merged


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    return generate_latest(exposition_registry(registry))


def authorized(token: SecretStr | None, header: str | None) -> bool:
    """Whether an Authorization header carries the metrics token (always, when none is
    set). Compared in constant time."""
    if token is None:
        return True
    expected = f"Bearer {token.get_secret_value()}".encode()
    return hmac.compare_digest(expected, (header or "").strip().encode())


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def metrics_app(registry: CollectorRegistry, token: SecretStr | None) -> WsgiApp:
    """A WSGI app serving the registry at /metrics, behind the token when one is set."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != METRICS_PATH:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found; metrics are at /metrics\n"]
        if not authorized(token, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"/metrics needs Authorization: Bearer <AIGC_METRICS_TOKEN>\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [render(registry)]

    return app


class MetricsServer(ThreadingMixIn, WSGIServer):
    # A slow scraper must not hold up the next one; threads die with the process.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # One line per scrape (every few seconds) would drown the process's own log.
        pass


def serve_metrics(
    port: int,
    *,
    host: str = "127.0.0.1",
    token: SecretStr | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> MetricsServer:
    """Serve `registry` at http://host:port/metrics from a daemon thread of this process;
    returns the server (its `server_port` is the one bound when `port` is 0)."""
    server = make_server(
        host,
        port,
        metrics_app(registry, token),
        server_class=MetricsServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, name="aigc-metrics", daemon=True)
    thread.start()
    log.info("metrics at http://%s:%d%s", host, server.server_port, METRICS_PATH)
    return server
