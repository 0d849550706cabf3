"""Bad input stops at the API edge: each class of hostile input gets a 422 (or 404) JSON error
naming the field, and nothing is stored. Over HTTP against the real app on the real
PostgreSQL and Redis."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from aigc.catalog import InvalidAliases
from aigc.settings import Settings
from aigc.strict_json import MAX_DEPTH
from api.main import create_app
from tests.conftest import count_jobs

JSON = {"content-type": "application/json"}
JSONL = {"content-type": "application/x-ndjson"}


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _stored_nothing(engine: sa.Engine) -> bool:
    return count_jobs(engine) == 0 and _count(engine, "batches") == 0


def _error(response: Any, status: int = 422) -> dict[str, Any]:
    """The error envelope, checked for its shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    return error


def _fields(error: dict[str, Any]) -> set[str]:
    return {e["field"] for e in error["errors"]}


def _nested(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def _upload(client: TestClient, data: bytes) -> str:
    response = client.post(
        "/v1/files",
        files={"file": ("requests.jsonl", data, "application/jsonl")},
        data={"purpose": "batch"},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _chat_line(custom_id: str, body: str) -> str:
    return (
        f'{{"custom_id": "{custom_id}", "method": "POST", "url": "/v1/chat/completions",'
        f' "body": {body}}}'
    )


def _openai_batch(client: TestClient, lines: list[str]) -> Any:
    file_id = _upload(client, "\n".join(lines).encode())
    return client.post(
        "/v1/batches",
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
    )


# ---- 1. JSON the database or the serializer cannot hold --------------------------------

UNHOLDABLE = [
    ('{"kind": "text", "prompt": "x", "metadata": {"score": NaN}}', "metadata.score"),
    ('{"kind": "text", "prompt": "x", "metadata": {"tags": [1, 2, 3, Infinity]}}',
     "metadata.tags[3]"),
    ('{"kind": "text", "prompt": "x", "params": {"temperature": -Infinity}}',
     "params.temperature"),
    ('{"kind": "text", "prompt": "x", "params": {"temperature": 1e400}}', "params.temperature"),
    ('{"kind": "text", "prompt": "x", "params": {"seed": 9223372036854775808}}', "params.seed"),
    ('{"kind": "text", "prompt": "x", "metadata": {"n": -9223372036854775809}}', "metadata.n"),
    ('{"kind": "text", "prompt": "x", "metadata": {"n": ' + "9" * 5000 + "}}", "metadata.n"),
    ('{"kind": "text", "prompt": "x", "metadata": {"s": "\\ud800"}}', "metadata.s"),
    ('{"kind": "text", "prompt": "\\udfff lone", "metadata": {}}', "prompt"),
    ('{"kind": "text", "prompt": "x", "metadata": {"\\ud800": 1}}', 'metadata["\\ud800"]'),
    ('{"kind": "text", "prompt": "x", "metadata": {"s": "a\\u0000b"}}', "metadata.s"),
    ('{"kind": "text", "prompt": "x", "metadata": {"a\\u0000": 1}}', 'metadata["a\\u0000"]'),
    ('{"kind": "text", "prompt": "x", "metadata": ' + _nested(MAX_DEPTH) + "}",
     "metadata" + ".a" * (MAX_DEPTH - 1)),
    ("[" * 100_000, "body"),
    ('{"kind": "text", "prompt": "x", "metadata": {"k": 1, "k": 2}}', "metadata.k"),
    ('{"kind": "text", "prompt": "x", "kind": "image"}', "kind"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "field"), UNHOLDABLE)
def test_unholdable_json_is_422_naming_the_field(
    client: TestClient, db_engine: sa.Engine, body: str, field: str
) -> None:
    error = _error(client.post("/v1/jobs", content=body.encode(), headers=JSON))
    assert error["type"] == "invalid_request"
    assert field in _fields(error), error
    assert _stored_nothing(db_engine)


def test_unholdable_json_in_a_json_batch_names_job_and_field(
    client: TestClient, db_engine: sa.Engine
) -> None:
    body = (
        '{"jobs": [{"kind": "text", "prompt": "ok"},'
        ' {"kind": "text", "prompt": "x", "params": {"seed": NaN}}],'
        ' "metadata": {"run": "a\\u0000"}}'
    )
    error = _error(client.post("/v1/batches", content=body.encode(), headers=JSON))
    assert _fields(error) == {"jobs[1].params.seed", "metadata.run"}
    assert _stored_nothing(db_engine)


def test_unholdable_json_in_jsonl_lines_names_line_and_field(
    client: TestClient, db_engine: sa.Engine
) -> None:
    lines = [
        '{"custom_id": "a", "kind": "text", "prompt": "fine"}',
        '{"custom_id": "b", "kind": "text", "prompt": "x", "metadata": {"t": [Infinity]}}',
        '{"custom_id": "c", "kind": "text", "prompt": "x", "params": {"seed": 1, "seed": 2}}',
        '{"custom_id": "d", "kind": "text", "prompt": "\\ud83d"}',
        "[" * 5000,
    ]
    response = client.post("/v1/batches", content="\n".join(lines).encode(), headers=JSONL)
    error = _error(response)
    assert error["type"] == "invalid_batch"
    assert {(e["line"], e["field"]) for e in error["errors"]} == {
        (2, "metadata.t[0]"),
        (3, "params.seed"),
        (4, "prompt"),
        (5, "line"),
    }
    assert _stored_nothing(db_engine)


def test_unholdable_json_in_an_openai_input_file_names_line_and_field(
    client: TestClient, db_engine: sa.Engine
) -> None:
    user = '{"role": "user", "content": "hi"}'
    lines = [
        _chat_line("a", f'{{"messages": [{user}]}}'),
        _chat_line("b", f'{{"messages": [{user}], "temperature": NaN}}'),
        _chat_line("c", f'{{"messages": [{user}], "seed": 1e999}}'),
    ]
    error = _error(_openai_batch(client, lines))
    assert {(e["line"], e["field"]) for e in error["errors"]} == {
        (2, "body.temperature"),
        (3, "body.seed"),
    }
    assert _stored_nothing(db_engine)


def test_stored_jobs_with_unusual_json_read_back_and_list(client: TestClient) -> None:
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH - 2):  # the body and `metadata` are two of the levels
        deep = {"d": deep}
    metadatas = [
        {"emoji": "🎨🧪👩🏽‍🔬", "rtl": "مرحبا", "zwj": "a\u200db", "cjk": "漢字"},
        {"deep": deep},
        {"keys": {"ключ": 1, "🔑": 2, "": 3}, "numbers": [2**63 - 1, -(2**63), 0.1, 1e-300]},
        {"escapes": 'line\nbreak\ttab\u2028sep"quote\\'},
    ]
    ids = []
    for metadata in metadatas:
        response = client.post(
            "/v1/jobs",
            json={"kind": "text", "model": "echo", "prompt": "日本語 ✓", "metadata": metadata},
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    for job_id, metadata in zip(ids, metadatas, strict=True):
        job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["metadata"] == metadata
        assert job["prompt"] == "日本語 ✓"
    listed = client.get("/v1/jobs", params={"limit": 100})
    assert listed.status_code == 200
    by_id = {job["id"]: job for job in listed.json()["data"]}
    assert [by_id[job_id]["metadata"] for job_id in ids] == metadatas

    # jsonb keeps numbers as decimals: a large float comes back as the equal integer.
    huge = client.post(
        "/v1/jobs",
        json={"kind": "text", "model": "echo", "prompt": "x", "metadata": {"f": 1.5e300}},
    ).json()
    assert float(client.get(f"/v1/jobs/{huge['id']}").json()["metadata"]["f"]) == 1.5e300


# ---- 2. Strict types in params ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("text", {"seed": True}),
        ("text", {"max_new_tokens": "5"}),
        ("text", {"temperature": "0.5"}),
        ("text", {"top_p": False}),
        ("image", {"steps": 2.0}),
        ("image", {"negative_prompt": 7}),
        ("audio", {"speaking_rate": "1"}),
    ],
)
def test_params_are_strictly_typed(
    client: TestClient, db_engine: sa.Engine, kind: str, params: dict[str, Any]
) -> None:
    [name] = params
    field = f"params.{name}"
    body = {"kind": kind, "prompt": "x", "params": params}
    error = _error(client.post("/v1/jobs", json=body))
    assert error["type"] == "invalid_request"
    assert field in _fields(error)
    assert count_jobs(db_engine) == 0


def test_an_int_is_still_a_valid_float(client: TestClient) -> None:
    body = {"kind": "text", "prompt": "x", "params": {"temperature": 1, "top_p": 1}}
    response = client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["temperature"] == 1.0


# ---- 3. Compute budget -----------------------------------------------------------------


@pytest.fixture
def with_tiny_models(settings: Settings, tiny_models: Path) -> Settings:
    """Settings whose model directory holds the tiny models' files (tokenizer, config)."""
    return settings.model_copy(update={"model_dir": tiny_models})


def test_image_over_budget_says_budget_and_ask(client: TestClient, db_engine: sa.Engine) -> None:
    body = {
        "kind": "image",
        "prompt": "x",
        "params": {"width": 2048, "height": 2048, "steps": 150, "num_images": 8},
    }
    error = _error(client.post("/v1/jobs", json=body))
    assert error["type"] == "over_budget"
    assert _fields(error) == {"params"}
    assert "2048 × 2048 × 150 × 8 = 5033164800" in error["message"]
    assert str(1024 * 1024 * 50 * 4) in error["message"]
    assert count_jobs(db_engine) == 0


@pytest.mark.parametrize(
    ("prompt", "params", "field"),
    [
        # tiny-text's context is 512 tokens, counted with its own tokenizer.
        (" ".join(f"word{i}" for i in range(3000)), {}, "prompt"),
        ("Once upon a time", {"max_new_tokens": 600}, "params.max_new_tokens"),
    ],
)
def test_text_over_the_models_context_is_refused_at_submit(
    app_client: Callable[[Settings], TestClient],
    with_tiny_models: Settings,
    db_engine: sa.Engine,
    prompt: str,
    params: dict[str, Any],
    field: str,
) -> None:
    with app_client(with_tiny_models) as client:
        body = {"kind": "text", "model": "tiny-text", "prompt": prompt, "params": params}
        error = _error(client.post("/v1/jobs", json=body))
        assert error["type"] == "over_budget"
        assert _fields(error) == {field}
        assert "tiny-text's context is 512 tokens" in error["message"]
        # Just inside the context is accepted.
        fits = {"kind": "text", "prompt": "Once upon a time", "params": {"max_new_tokens": 500}}
        assert client.post("/v1/jobs", json=fits).status_code == 202
    assert count_jobs(db_engine) == 1


def test_text_over_the_configured_budget_is_refused(
    app_client: Callable[[Settings], TestClient], settings: Settings, db_engine: sa.Engine
) -> None:
    # echo has no tokenizer: its prompt tokens are estimated (UTF-8 bytes / 4).
    with app_client(settings.model_copy(update={"max_text_tokens": 100})) as client:
        body = {"kind": "text", "model": "echo", "prompt": "x" * 400, "params": {}}
        error = _error(client.post("/v1/jobs", json=body))
        assert error["type"] == "over_budget"
        assert _fields(error) == {"prompt"}
        assert "100 tokens" in error["message"]
        body["params"] = {"max_new_tokens": 200}
        body["prompt"] = "short"
        error = _error(client.post("/v1/jobs", json=body))
        assert _fields(error) == {"params.max_new_tokens"}
    assert count_jobs(db_engine) == 0


def test_audio_over_budget_counts_characters_over_speaking_rate(
    client: TestClient, db_engine: sa.Engine
) -> None:
    body = {"kind": "audio", "prompt": "a" * 600, "params": {"speaking_rate": 0.25}}
    error = _error(client.post("/v1/jobs", json=body))
    assert error["type"] == "over_budget"
    assert _fields(error) == {"prompt"}
    assert "count as 2400; the budget is 2000" in error["message"]
    assert count_jobs(db_engine) == 0
    body["params"] = {"speaking_rate": 1.0}
    assert client.post("/v1/jobs", json=body).status_code == 202


def test_over_budget_batch_lines_are_listed(
    app_client: Callable[[Settings], TestClient], with_tiny_models: Settings, db_engine: sa.Engine
) -> None:
    lines = [
        {"custom_id": "ok", "kind": "text", "prompt": "hi"},
        {"custom_id": "long", "kind": "text", "prompt": "hi", "params": {"max_new_tokens": 600}},
        {"custom_id": "big", "kind": "image", "prompt": "x", "params": {"steps": 150,
         "width": 2048, "height": 2048}},
    ]  # fmt: skip
    body = "\n".join(json.dumps(line) for line in lines).encode()
    with app_client(with_tiny_models) as client:
        error = _error(client.post("/v1/batches", content=body, headers=JSONL))
    assert {(e["line"], e["field"], e["code"]) for e in error["errors"]} == {
        (2, "params.max_new_tokens", "over_budget"),
        (3, "params", "over_budget"),
    }
    assert _stored_nothing(db_engine)


# ---- 4. Unknown models never run on another model --------------------------------------


def test_unknown_native_model_is_422_naming_model(client: TestClient, db_engine: sa.Engine) -> None:
    error = _error(client.post("/v1/jobs", json={"kind": "text", "model": "gpt-4o", "prompt": "x"}))
    assert error["type"] == "model_not_found"
    assert _fields(error) == {"model"}
    # A served model of another kind is not a text model either.
    error = _error(
        client.post("/v1/jobs", json={"kind": "text", "model": "tiny-image", "prompt": "x"})
    )
    assert _fields(error) == {"model"}
    jsonl = b'{"custom_id": "a", "kind": "image", "model": "dall-e-3", "prompt": "x"}'
    error = _error(client.post("/v1/batches", content=jsonl, headers=JSONL))
    assert [(e["line"], e["field"], e["code"]) for e in error["errors"]] == [
        (1, "model", "model_not_found")
    ]
    assert _stored_nothing(db_engine)


def test_unknown_openai_model_is_reported_per_line(
    client: TestClient, db_engine: sa.Engine
) -> None:
    user = '[{"role": "user", "content": "hi"}]'
    lines = [
        _chat_line("a", f'{{"model": "echo", "messages": {user}}}'),
        _chat_line("b", f'{{"model": "gpt-4o-mini", "messages": {user}}}'),
        _chat_line("c", f'{{"model": "tiny-image", "messages": {user}}}'),
        _chat_line("d", f'{{"model": "echo", "messages": {user}, "max_tokens": 0}}'),
    ]
    error = _error(_openai_batch(client, lines))
    assert error["type"] == "invalid_batch"
    assert {(e["line"], e["field"], e["code"]) for e in error["errors"]} == {
        (2, "body.model", "model_not_found"),
        (3, "body.model", "model_not_found"),
        (4, "body.max_tokens", "invalid_request"),
    }
    assert _stored_nothing(db_engine)


def test_aliases_resolve_list_and_name_the_real_model(
    app_client: Callable[[Settings], TestClient], settings: Settings, db_engine: sa.Engine
) -> None:
    aliased = settings.model_copy(
        update={"model_aliases": {"gpt-4o-mini": "tiny-text", "tts-1": "tiny-audio"}}
    )
    with app_client(aliased) as client:
        models = {m["name"]: m for m in client.get("/v1/models").json()["data"]}
        assert models["tiny-text"]["aliases"] == ["gpt-4o-mini"]
        assert models["tiny-audio"]["aliases"] == ["tts-1"]
        assert models["echo"]["aliases"] == []

        native = client.post(
            "/v1/jobs", json={"kind": "text", "model": "gpt-4o-mini", "prompt": "x"}
        )
        assert native.status_code == 202, native.text
        assert native.json()["model"] == "tiny-text"

        user = '[{"role": "user", "content": "hi"}]'
        batch = _openai_batch(
            client, [_chat_line("a", f'{{"model": "gpt-4o-mini", "messages": {user}}}')]
        )
        assert batch.status_code == 202, batch.text
    with db_engine.connect() as conn:
        models_run = conn.execute(sa.text("SELECT model FROM jobs")).scalars().all()
    assert models_run == ["tiny-text", "tiny-text"]


def test_alias_to_a_model_not_served_stops_startup(settings: Settings) -> None:
    bad = settings.model_copy(update={"model_aliases": {"gpt-4o": "Qwen/Qwen2.5-0.5B-Instruct"}})
    with pytest.raises(InvalidAliases, match="'gpt-4o' → 'Qwen/Qwen2.5-0.5B-Instruct'"):
        create_app(bad)


# ---- 5. Path ids -----------------------------------------------------------------------

ODD_IDS = ["%00", "abc%00def", "not-a-uuid", "%ff%fe", "%E2%80%AE", "é", "x" * 8000, "-1", "%2e%2e"]
ID_ROUTES = [
    ("GET", "/v1/jobs/{}"),
    ("POST", "/v1/jobs/{}/cancel"),
    ("POST", "/v1/jobs/{}/retry"),
    ("GET", "/v1/batches/{}"),
    ("POST", "/v1/batches/{}/cancel"),
    ("POST", "/v1/batches/{}/retry"),
    ("GET", "/v1/batches/{}/jobs"),
    ("GET", "/v1/batches/{}/results"),
    ("GET", "/v1/artifacts/{}"),
]


@pytest.mark.parametrize("ident", ODD_IDS, ids=lambda ident: ident[:12])
def test_odd_path_ids_are_404_or_422(client: TestClient, ident: str) -> None:
    for method, route in ID_ROUTES:
        response = client.request(method, route.format(ident))
        error = _error(response, response.status_code)
        assert response.status_code in (404, 422), (method, route, response.text)
        if response.status_code == 422:
            assert error["errors"], error


def test_counting_tokens_loads_no_torch(tiny_models: Path) -> None:
    code = (
        "import sys; from aigc.budget import text_model_files; from aigc.settings import Settings;"
        " from models.registry import TINY_TEXT;"
        f" files = text_model_files(TINY_TEXT, Settings(model_dir={str(tiny_models)!r}));"
        " print(files.count('Once upon a time') > 0, files.context,"
        " 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "512", "False", "False"]


def test_fast_speech_does_not_buy_a_longer_prompt(client: TestClient, db_engine: sa.Engine) -> None:
    body = {"kind": "audio", "prompt": "a" * 2001, "params": {"speaking_rate": 4.0}}
    error = _error(client.post("/v1/jobs", json=body))
    assert error["type"] == "over_budget"
    assert count_jobs(db_engine) == 0
