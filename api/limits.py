"""Request body size limits, enforced while the body arrives (a client that lies about or
omits Content-Length is cut off all the same)."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

# Uploads (batches, batch input files) get the batch limit; every other body the small one.
UPLOAD_PREFIXES = ("/v1/batches", "/v1/files")


class BodyTooLarge(HTTPException):
    """Raised from inside the app's body read, so the app answers it as any HTTP error."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is over {limit} bytes")


class BodySizeLimit:
    """ASGI middleware answering 413 once a request body passes its route's limit."""

    def __init__(self, app: ASGIApp, *, default_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self.default_bytes = default_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.upload_bytes if path.startswith(UPLOAD_PREFIXES) else self.default_bytes
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await _too_large(send, limit)


async def _too_large(send: Send, limit: int) -> None:
    body: dict[str, Any] = error_body(
        "payload_too_large", f"the request body is over {limit} bytes"
    )
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
