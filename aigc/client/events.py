"""Following a job's or a batch's server-sent event stream instead of polling: a dropped
connection is reopened, resuming with Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
from httpx_sse import aconnect_sse, connect_sse

from aigc.client.errors import error_from

# Longer than the server's keep-alive interval (AIGC_EVENT_KEEPALIVE_S, 15 s by default):
# a stream silent for this long is taken for dead and reopened.
READ_TIMEOUT_S = 60.0
RECONNECT_DELAY_S = 1.0

Event = tuple[str, Any]  # (event name, decoded data)


def _timeout(deadline: float | None) -> httpx.Timeout:
    """No read waits past the caller's deadline, where there is one."""
    read = READ_TIMEOUT_S
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the stream did not end in time")
        read = min(read, remaining)
    return httpx.Timeout(10.0, read=read)


class _Decoder:
    """Server-sent event lines to (event, data, id), one line at a time, so the caller sees
    every line, keep-alive comments included, and can check its deadline between them (a
    stream the server keeps alive would otherwise never time out)."""

    def __init__(self) -> None:
        self.event, self.data, self.id = "", list[str](), ""

    def feed(self, line: str) -> tuple[str, str, str] | None:
        if not line:
            if not self.data:
                self.event = ""
                return None
            done = (self.event or "message", "\n".join(self.data), self.id)
            self.event, self.data = "", []
            return done
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self.event = value
        elif field == "data":
            self.data.append(value)
        elif field == "id" and "\0" not in value:
            self.id = value
        return None


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError("the stream did not end in time")


class _Resume:
    """What `follow` and `afollow` keep across a stream's connections: the last event id to
    resume from, the line decoder, and until when a broken connection is worth reopening."""

    def __init__(self, reconnect_s: float, deadline: float | None) -> None:
        self.reconnect_s = reconnect_s
        self.deadline = deadline
        self.last_event_id: str | None = None
        self.give_up = time.monotonic() + reconnect_s
        self.decoder = _Decoder()

    def connect(self) -> dict[str, Any]:
        """The arguments of the next connection: resume headers and the read timeout."""
        self.decoder = _Decoder()
        headers = {"Last-Event-ID": self.last_event_id} if self.last_event_id else {}
        return {"headers": headers, "timeout": _timeout(self.deadline)}

    def take(self, line: str) -> Event | None:
        """The event a line completes, if any (a keep-alive line too checks the deadline)."""
        _check_deadline(self.deadline)
        if (decoded := self.decoder.feed(line)) is None:
            return None
        name, data, event_id = decoded
        self.give_up = time.monotonic() + self.reconnect_s
        if event_id:
            self.last_event_id = event_id
        return name, json.loads(data)

    def check_reconnect(self) -> None:
        """In the handler of a broken connection: re-raise its error once reopening is no
        longer worth it (past the deadline, or reconnect_s without an event)."""
        _check_deadline(self.deadline)
        if time.monotonic() + RECONNECT_DELAY_S > self.give_up:
            raise


def follow(
    client: httpx.Client,
    path: str,
    *,
    reconnect_s: float = 60.0,
    deadline: float | None = None,
) -> Iterator[Event]:
    """Each event of the stream at `path`, until the server ends it. A refused stream raises
    the API's typed error (NotFound, ...); after reconnect_s without a working connection,
    httpx's transport error propagates. Past `deadline` (time.monotonic()), TimeoutError."""
    resume = _Resume(reconnect_s, deadline)
    while True:
        try:
            with connect_sse(client, "GET", path, **resume.connect()) as source:
                response = source.response
                if response.status_code == 204:
                    return  # resumed after the last event: nothing more will come
                if not response.is_success:
                    response.read()
                    raise error_from(response)
                for line in response.iter_lines():
                    if (event := resume.take(line)) is not None:
                        yield event
                return
        except httpx.TransportError:
            resume.check_reconnect()
            time.sleep(RECONNECT_DELAY_S)


async def afollow(
    client: httpx.AsyncClient,
    path: str,
    *,
    reconnect_s: float = 60.0,
    deadline: float | None = None,
) -> AsyncIterator[Event]:
    """`follow` for an httpx.AsyncClient."""
    resume = _Resume(reconnect_s, deadline)
    while True:
        try:
            async with aconnect_sse(client, "GET", path, **resume.connect()) as source:
                response = source.response
                if response.status_code == 204:
                    return
                if not response.is_success:
                    await response.aread()
                    raise error_from(response)
                async for line in response.aiter_lines():
                    if (event := resume.take(line)) is not None:
                        yield event
                return
        except httpx.TransportError:
            resume.check_reconnect()
            await asyncio.sleep(RECONNECT_DELAY_S)
