"""The API's description of itself: `/openapi.json` with the real error envelope on every
error response and the bodies routes read themselves, readable operation ids, and `/docs` and
`/redoc` served with their assets from this process (no CDN: they work offline)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from api.openai.batches import OpenAIBatchCreate
from api.schemas import BatchCreate, ErrorEnvelope, ResultLine

DOCS_ASSETS_PATH = "/docs-assets"
COMPONENTS = "#/components/schemas/"
ENVELOPE_REF = {"$ref": f"{COMPONENTS}ErrorEnvelope"}
# FastAPI's own 422 schemas, which describe a body this API never sends.
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
# Models routes read or write themselves (a body parsed by hand, a JSONL line), which FastAPI
# cannot see in their signatures.
EXTRA_MODELS: tuple[tuple[type[BaseModel], str], ...] = (
    (BatchCreate, "validation"),
    (OpenAIBatchCreate, "validation"),
    (ResultLine, "serialization"),
    (ErrorEnvelope, "serialization"),
)


def operation_id(route: APIRoute) -> str:
    """The route's name (`submit_job`, `create_batch`): what a generated client calls it."""
    return route.name


def docs_assets() -> Path:
    """swagger-ui and redoc's bundles, as the fastapi-offline package ships them."""
    return Path(str(files("fastapi_offline") / "static"))


def install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI) and `/redoc`, their scripts and styles served from here, and the
    OpenAPI document built by `openapi_schema`. Create the app with docs_url and redoc_url
    None so FastAPI's CDN-backed pages are not registered too."""
    app.mount(DOCS_ASSETS_PATH, StaticFiles(directory=docs_assets()), name="docs_assets")

    def asset(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{DOCS_ASSETS_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, "redoc.standalone.js"),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False,
        )

    def cached_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_schema(app)
        return app.openapi_schema

    app.openapi = cached_openapi  # type: ignore[method-assign]


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    for model, mode in EXTRA_MODELS:
        _add_component(components, model, mode)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            _describe_errors(path, operation)
    for name in FASTAPI_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def _add_component(components: dict[str, Any], model: type[BaseModel], mode: str) -> None:
    if model.__name__ in components:
        return
    model_schema = model.model_json_schema(
        ref_template=COMPONENTS + "{model}",
        mode=mode,  # type: ignore[arg-type]
    )
    for name, definition in model_schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = model_schema


def _describe_errors(path: str, operation: dict[str, Any]) -> None:
    """Every error response of the operation carries the envelope the handlers answer: the
    ones a route declares, 404 where the path names a resource, 422 where it takes input,
    and any other status (`default`)."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "{" in path:
        responses.setdefault("404", {"description": "Not found"})
    if operation.get("parameters") or operation.get("requestBody"):
        responses["422"] = {"description": "Invalid request: each wrong field is named"}
    responses.setdefault("default", {"description": "An error"})
    for status, response in responses.items():
        if (status[0] in "45" or status == "default") and _is_envelope_slot(response):
            response["content"] = {"application/json": {"schema": ENVELOPE_REF}}


def _is_envelope_slot(response: dict[str, Any]) -> bool:
    """No body declared, or FastAPI's validation error body: the envelope belongs there
    (readyz's 503, a Health body, stays as declared)."""
    content = response.get("content")
    if not content:
        return True
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))
