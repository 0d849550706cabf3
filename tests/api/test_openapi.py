"""The API describes itself truthfully: /openapi.json documents every route with readable
operation ids, the bodies and the error envelope it really sends; /docs and /redoc work
offline; a client generated from the document covers every route and talks to the API."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from pydantic import TypeAdapter
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from aigc.settings import Settings
from api.main import create_app
from api.schemas import BatchList, BatchObject, ErrorEnvelope

OPERATIONS = {
    ("post", "/v1/jobs"): "submit_job",
    ("get", "/v1/jobs"): "list_jobs",
    ("get", "/v1/jobs/{job_id}"): "get_job",
    ("post", "/v1/jobs/{job_id}/cancel"): "cancel_job",
    ("post", "/v1/jobs/{job_id}/retry"): "retry_job",
    ("get", "/v1/jobs/{job_id}/events"): "job_events",
    ("post", "/v1/batches"): "create_batch",
    ("get", "/v1/batches"): "list_batches",
    ("get", "/v1/batches/{batch_id}"): "get_batch",
    ("post", "/v1/batches/{batch_id}/cancel"): "cancel_batch",
    ("post", "/v1/batches/{batch_id}/retry"): "retry_batch",
    ("get", "/v1/batches/{batch_id}/jobs"): "list_batch_jobs",
    ("get", "/v1/batches/{batch_id}/results"): "get_batch_results",
    ("get", "/v1/batches/{batch_id}/archive"): "get_batch_archive",
    ("get", "/v1/batches/{batch_id}/events"): "batch_events",
    ("post", "/v1/files"): "upload_file",
    ("get", "/v1/files/{file_id}"): "get_file",
    ("delete", "/v1/files/{file_id}"): "delete_file",
    ("get", "/v1/files/{file_id}/content"): "download_file",
    ("get", "/v1/artifacts/{artifact_id}/content"): "download_artifact",
    ("get", "/v1/artifacts/{artifact_id}/provenance"): "get_artifact_provenance",
    ("get", "/v1/models"): "list_models",
    ("post", "/v1/verify"): "verify_file",
    ("post", "/v1/webhooks"): "create_webhook",
    ("get", "/v1/webhooks"): "list_webhooks",
    ("get", "/v1/webhooks/{endpoint_id}"): "get_webhook",
    ("patch", "/v1/webhooks/{endpoint_id}"): "update_webhook",
    ("delete", "/v1/webhooks/{endpoint_id}"): "delete_webhook",
    ("get", "/v1/webhooks/deliveries"): "list_webhook_deliveries",
    ("get", "/v1/webhooks/deliveries/{delivery_id}"): "get_webhook_delivery",
    ("post", "/v1/webhooks/deliveries/{delivery_id}/redeliver"): "redeliver_webhook",
    ("get", "/v1/webhooks/secret"): "get_webhook_secret",
    ("post", "/v1/webhooks/secret/rotate"): "rotate_webhook_secret",
    ("post", "/v1/admin/teams"): "create_team",
    ("get", "/v1/admin/teams"): "list_teams",
    ("patch", "/v1/admin/teams/{name}"): "update_team",
    ("post", "/v1/admin/keys"): "create_key",
    ("get", "/v1/admin/keys"): "list_keys",
    ("post", "/v1/admin/keys/{prefix}/revoke"): "revoke_key",
    ("get", "/v1/admin/blocked"): "list_blocked",
    ("post", "/v1/moderation/rules"): "create_rule",
    ("get", "/v1/moderation/rules"): "list_rules",
    ("delete", "/v1/moderation/rules/{rule_id}"): "delete_rule",
    ("get", "/healthz"): "healthz",
    ("get", "/readyz"): "readyz",
}
ENVELOPE = "#/components/schemas/ErrorEnvelope"
GENERATE_TIMEOUT_S = 120
CONFORMANCE_EXAMPLES = 10  # per operation and mode: every status the API answers, bounded


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_route_is_documented_with_a_readable_operation_id(spec: dict[str, Any]) -> None:
    documented = {(method, path): op["operationId"] for method, path, op in _operations(spec)}
    assert documented == OPERATIONS


def test_every_error_response_is_the_envelope(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        responses = operation["responses"]
        assert "default" in responses, (method, path)
        if "{" in path:
            assert "404" in responses, (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert "422" in responses, (method, path)
        for status, response in responses.items():
            if status[0] not in "45" and status != "default":
                continue
            schema = response["content"]["application/json"]["schema"]
            if (path, status) == ("/readyz", "503"):
                assert schema["$ref"].endswith("/Health")  # readiness answers its checks
            else:
                assert schema == {"$ref": ENVELOPE}, (method, path, status)
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    # Every reference resolves.
    for ref in set(_refs(spec)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_batch_bodies_objects_and_results_are_schemas(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    create = spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]
    assert create["application/json"]["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/BatchCreate"},
        {"$ref": "#/components/schemas/OpenAIBatchCreate"},
    ]
    assert set(create["application/json"]["examples"]) == {"native", "openai"}
    assert create["application/x-ndjson"]["schema"]["type"] == "string"
    assert create["application/x-ndjson"]["example"].count("\n") == 2
    assert {"input_file_id", "endpoint", "completion_window"} <= set(
        schemas["OpenAIBatchCreate"]["required"]
    )
    assert schemas["BatchCreate"]["examples"] and schemas["JobCreate"]["examples"]
    batch_shapes = [
        {"$ref": "#/components/schemas/BatchPublic"},
        {"$ref": "#/components/schemas/OpenAIBatch"},
    ]
    for method, path in (
        ("post", "/v1/batches"),
        ("get", "/v1/batches/{batch_id}"),
        ("post", "/v1/batches/{batch_id}/cancel"),
        ("post", "/v1/batches/{batch_id}/retry"),
    ):
        ok = next(r for s, r in spec["paths"][path][method]["responses"].items() if s[0] == "2")
        assert ok["content"]["application/json"]["schema"]["anyOf"] == batch_shapes
    assert schemas["BatchList"]["properties"]["data"]["items"]["anyOf"] == batch_shapes
    assert {"line", "custom_id", "job_id", "status", "error", "artifacts"} <= set(
        schemas["ResultLine"]["properties"]
    )
    results_get = spec["paths"]["/v1/batches/{batch_id}/results"]["get"]
    results = results_get["responses"]["200"]
    assert {"application/x-ndjson", "text/csv"} <= set(results["content"])
    [results_format] = [p for p in results_get["parameters"] if p["name"] == "format"]
    assert results_format["in"] == "query"
    assert schemas["ResultsFormat"]["enum"] == ["jsonl", "csv"]
    assert results_format["schema"]["$ref"] == "#/components/schemas/ResultsFormat"
    assert schemas["ErrorEnvelope"]["properties"]["error"] == {
        "$ref": "#/components/schemas/ErrorDetail"
    }
    upload = spec["paths"]["/v1/files"]["post"]["requestBody"]["content"]
    assert set(upload["multipart/form-data"]["schema"]["required"]) == {"file", "purpose"}


def test_real_bodies_match_the_documented_models(client: TestClient) -> None:
    native = client.post("/v1/batches", json={"jobs": [{"kind": "text", "prompt": "hi"}]})
    assert native.status_code == 202
    lines = "".join(
        json.dumps(
            {
                "custom_id": f"r{n}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "echo", "messages": [{"role": "user", "content": "hi"}]},
            }
        )
        + "\n"
        for n in range(2)
    )
    uploaded = client.post(
        "/v1/files", files={"file": ("in.jsonl", lines.encode())}, data={"purpose": "batch"}
    ).json()
    openai = client.post(
        "/v1/batches",
        json={
            "input_file_id": uploaded["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )
    assert openai.status_code == 202, openai.text
    shapes = TypeAdapter(BatchObject)
    for created in (native.json(), openai.json()):
        parsed = shapes.validate_python(created)
        assert parsed.model_dump(mode="json") == created
    listed = client.get("/v1/batches").json()
    assert BatchList.model_validate(listed).model_dump(mode="json") == listed
    assert listed["data"] == [openai.json(), native.json()]
    for error in (
        client.get(f"/v1/jobs/{uuid.uuid4()}"),
        client.post("/v1/jobs", json={"kind": "text"}),
        client.get("/v1/batches", params={"limit": 0}),
    ):
        assert ErrorEnvelope.model_validate(error.json()).error.type


@schemathesis.serializer("application/x-ndjson")
def _jsonl_body(ctx: object, value: object) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(str(value), "utf-8")


@pytest.mark.timeout(300)
def test_responses_conform_to_the_document(settings: Settings) -> None:
    """Valid and invalid requests to every operation: each answer's status, content type
    and body are the ones the document declares (errors as the envelope)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=CONFORMANCE_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(checks=checks)

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # no input to get wrong
            except Exception as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _asset_urls(html: str) -> list[str]:
    """Every URL the page loads: scripts, styles, icons and the OpenAPI document."""
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    urls += re.findall(r"""spec-url=["']([^"']+)["']""", html)
    return urls


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_everything_from_the_api(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = _asset_urls(response.text)
    assert "/openapi.json" in urls
    assert any(url.endswith(".js") for url in urls)
    assert not re.search(r"https?://|//[a-z]", "\n".join(urls)), urls
    assert "fonts.googleapis" not in response.text and "cdn.jsdelivr" not in response.text
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url


def test_generated_client_covers_every_route_and_works(
    client: TestClient, spec: dict[str, Any], tmp_path: Path
) -> None:
    spec_path = tmp_path / "openapi.json"
    spec_path.write_text(json.dumps(spec))
    package = "aigc_generated_client"
    bin_dir = str(Path(sys.executable).parent)
    # Offline: the generator reads the file and formats with the ruff of this environment.
    generated = subprocess.run(
        [
            os.path.join(bin_dir, "openapi-python-client"),
            "generate",
            "--path",
            str(spec_path),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / package),
        ],
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=GENERATE_TIMEOUT_S,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    modules = {
        path.stem for path in (tmp_path / package / "api").glob("*/*.py") if path.stem != "__init__"
    }
    assert modules == set(OPERATIONS.values())

    sys.path.insert(0, str(tmp_path))
    try:
        generated_client = importlib.import_module(package)
        for tag_module in (tmp_path / package / "api").glob("*/*.py"):
            importlib.import_module(f"{package}.api.{tag_module.parent.name}.{tag_module.stem}")
        _drive(client, package, generated_client)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.startswith(package)]:
            del sys.modules[name]


def _drive(client: TestClient, package: str, generated: Any) -> None:
    """A few calls through the generated client, on the in-process API."""
    api = f"{package}.api"
    models = importlib.import_module(f"{package}.models")
    create_batch = importlib.import_module(f"{api}.batches.create_batch")
    get_batch = importlib.import_module(f"{api}.batches.get_batch")
    list_batch_jobs = importlib.import_module(f"{api}.batches.list_batch_jobs")
    submit_job = importlib.import_module(f"{api}.jobs.submit_job")
    get_job = importlib.import_module(f"{api}.jobs.get_job")

    api_client = generated.Client(base_url="http://testserver")
    api_client.set_httpx_client(client)

    job = submit_job.sync(
        client=api_client, body=models.JobCreate.from_dict({"kind": "text", "prompt": "hi"})
    )
    assert isinstance(job, models.JobPublic) and job.status == models.JobStatus.QUEUED
    body = models.BatchCreate.from_dict(
        {"jobs": [{"kind": "text", "prompt": "a"}, {"kind": "text", "prompt": "b"}]}
    )
    batch = create_batch.sync(client=api_client, body=body)
    assert isinstance(batch, models.BatchPublic) and batch.counts.total == 2
    assert get_batch.sync(batch.id, client=api_client).id == batch.id
    jobs = list_batch_jobs.sync(batch.id, client=api_client)
    assert [j.prompt for j in jobs.data] == ["a", "b"]
    missing = get_job.sync(uuid.uuid4(), client=api_client)
    assert isinstance(missing, models.ErrorEnvelope) and missing.error.type_ == "not_found"
