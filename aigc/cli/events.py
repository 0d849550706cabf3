"""Following a job's or a batch's server-sent event stream from the command line, instead
of polling: reconnects where a connection drops, resuming with Last-Event-ID."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

# Longer than the server's keep-alive interval (AIGC_EVENT_KEEPALIVE_S, 15 s by default):
# a stream silent for this long is taken for dead and reopened.
READ_TIMEOUT_S = 60.0
RECONNECT_DELAY_S = 1.0


class StreamFailed(Exception):
    """The API refused the stream (an unknown id, a bad key): reconnecting cannot help."""


def follow(
    client: httpx.Client, path: str, *, reconnect_s: float = 60.0
) -> Iterator[tuple[str, Any]]:
    """(event name, decoded data) for each event of the stream at `path`, until the server
    ends it. A dropped connection is reopened from the last event seen; after reconnect_s
    without a working connection, httpx's error propagates."""
    last_event_id: str | None = None
    deadline = time.monotonic() + reconnect_s
    while True:
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_S)
        try:
            with connect_sse(client, "GET", path, headers=headers, timeout=timeout) as source:
                response = source.response
                if response.status_code == 204:
                    return  # resumed after the last event: nothing more will come
                if not response.is_success:
                    response.read()
                    raise StreamFailed(_error_message(response))
                for event in source.iter_sse():
                    deadline = time.monotonic() + reconnect_s
                    if event.id:
                        last_event_id = event.id
                    yield event.event, json.loads(event.data)
                return
        except httpx.TransportError:
            if time.monotonic() + RECONNECT_DELAY_S > deadline:
                raise
            time.sleep(RECONNECT_DELAY_S)


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200] or response.reason_phrase
    return f"GET {response.url.path}: {response.status_code} {message}"
