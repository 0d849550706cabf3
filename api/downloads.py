"""Stored bytes over HTTP, in one place: artifacts, files and stored batch results are sent
with `nosniff`, their strong ETag (`If-None-Match` → 304) and byte ranges (206, 416), or,
from a store that hands out its own URLs (S3), redirected there (307): no bytes through
the API."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable

from aigc.errors import ErrorCode, Gone
from aigc.storage import ArtifactStore
from api.errors import error_body

# Browsers must not guess a type from the bytes: a text artifact that looks like HTML stays
# text, never a page running script on the API's origin.
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
# A redirect to a presigned URL is good only while the URL is: no cache may keep it.
REDIRECT_HEADERS = {**NOSNIFF, "Cache-Control": "no-store"}


class _RangedFile(FileResponse):
    """FileResponse, except that a malformed Range header is ignored (the whole file, 200),
    as RFC 9110 allows, instead of a plain-text 400."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match against a strong ETag (quoted), by weak comparison as RFC 9110 says."""
    if if_none_match is None:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates


def is_expired(expires_at: datetime | None) -> bool:
    """Whether a retention expiry has passed (by this process's clock)."""
    return expires_at is not None and expires_at <= datetime.now(UTC)


def check_not_expired(what: str, ident: object, expires_at: datetime | None) -> None:
    """Gone (410) once `expires_at` has passed: the bytes are, or are about to be, deleted
    by the retention sweep."""
    if expires_at is not None and is_expired(expires_at):
        when = expires_at.astimezone(UTC).isoformat(timespec="seconds")
        raise Gone(
            f"{what} {ident} expired at {when} under its team's retention: its bytes are "
            "deleted and cannot be downloaded"
        )


def presigned_ttl(url_ttl_s: int, expires_at: datetime | None) -> int:
    """How long a download URL may live: AIGC_URL_TTL_S, but never past the expiry of what
    it points at (at least a second)."""
    if expires_at is None:
        return url_ttl_s
    left = int((expires_at - datetime.now(UTC)).total_seconds())
    return max(1, min(url_ttl_s, left))


def stored_response(
    request: Request,
    store: ArtifactStore,
    key: str,
    *,
    media_type: str,
    url_ttl_s: int,
    filename: str | None = None,
    sha256: str | None = None,
) -> Response:
    """The object under `key`: 304 when the client holds it already (by its sha256); a 307
    to the store's own URL (valid url_ttl_s) where it has one; else a range of it (206)
    where asked and the store has a local file, or all of it."""
    headers = dict(NOSNIFF)
    etag = f'"{sha256}"' if sha256 else None
    if etag is not None:
        headers["ETag"] = etag
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
    url = store.download_url(
        key,
        ttl_s=url_ttl_s,
        media_type=media_type,
        filename=filename or key.rsplit("/", 1)[-1],
    )
    if url is not None:
        return RedirectResponse(url, status_code=307, headers=REDIRECT_HEADERS)
    path = store.local_path(key)
    if path is None:
        headers["Accept-Ranges"] = "none"
        return StreamingResponse(store.open(key), media_type=media_type, headers=headers)
    try:
        stat = path.stat()
    except FileNotFoundError:
        # Deleted since the caller looked (a retry dropping stale results).
        raise Gone("the bytes are no longer stored") from None
    response = _RangedFile(
        path,
        media_type=media_type,
        filename=filename,
        headers=headers,
        stat_result=stat,
    )
    unsatisfiable = _unsatisfiable_range(request, response, stat.st_size)
    return unsatisfiable or response


def _unsatisfiable_range(
    request: Request, response: FileResponse, size: int
) -> JSONResponse | None:
    """The 416 for a range past the end, as JSON like every error (FileResponse's own is
    plain text); None when the range is fine, malformed (ignored) or not to be used."""
    http_range = request.headers.get("range")
    if http_range is None:
        return None
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range not in (
        response.headers.get("etag"),
        response.headers.get("last-modified"),
    ):
        return None
    try:
        _RangedFile._parse_range_header(http_range, size)
    except RangeNotSatisfiable:
        message = f"starts past the end of the content ({size} bytes)"
        return JSONResponse(
            error_body(
                ErrorCode.RANGE_NOT_SATISFIABLE,
                f"range: {message}",
                [{"field": "range", "message": message}],
            ),
            416,
            headers={**NOSNIFF, "Content-Range": f"bytes */{size}"},
        )
    return None
