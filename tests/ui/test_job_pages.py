"""The single-job form and a job's page through TestClient on the real PostgreSQL: the
form's parameters come from the schemas /v1/models serves, and a job's fragments show only
the caller's team's job, live until it ends."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from enum import StrEnum
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import Field
from sqlalchemy.orm import Session

from aigc.catalog import Catalog
from aigc.settings import Settings
from aigc.storage import LocalStore
from api.main import create_app
from api.ui.param_fields import param_fields
from db import jobs as job_queries
from models.params import PARAMS_BY_KIND, ImageParams, Kind
from tests.conftest import TeamKey

WORKER = "test-job-pages"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


class Controls(HTMLParser):
    """A fragment's labels, inputs, selects and their options, as a browser reads them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}  # by id
        self.labels: dict[str, str] = {}  # for → text
        self.options: dict[str, list[tuple[str, bool]]] = {}  # select id → (value, selected)
        self._label: str | None = None
        self._select: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("input", "select", "textarea") and values.get("id"):
            self.inputs[str(values["id"])] = {"tag": tag, **values}
        if tag == "select":
            self._select = values.get("id")
            self.options[str(self._select)] = []
        elif tag == "option" and self._select:
            self.options[self._select].append((values.get("value") or "", "selected" in values))
        elif tag == "label":
            self._label = values.get("for")
            self.labels[str(self._label)] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data: str) -> None:
        if self._label:
            self.labels[self._label] += data.strip()

    def selected(self, select_id: str) -> list[str]:
        return [value for value, selected in self.options[select_id] if selected]


def _get(client: TestClient, team: TeamKey, path: str, **params: str) -> Controls:
    response = client.get(path, params=params, headers=team.headers)
    assert response.status_code == 200, response.text
    return Controls(response.text)


def test_form_offers_each_kinds_models_default_selected_and_its_parameters(
    client: TestClient, team: TeamKey, settings: Settings
) -> None:
    form = _get(client, team, "/ui/parts/jobs/new")
    assert [value for value, _ in form.options["job-kind"]] == ["text", "image", "audio"]
    assert form.selected("job-kind") == ["text"]
    assert form.selected("job-model-name") == ["tiny-text"]  # the offline profile's default
    assert [value for value, _ in form.options["job-model-name"]] == ["echo", "tiny-text"]
    prompt = form.inputs["job-prompt"]
    assert prompt["tag"] == "textarea" and prompt["maxlength"] == str(settings.max_prompt_chars)
    assert form.selected("job-priority") == ["normal"]
    for control in ("job-kind", "job-model-name", "job-prompt", "job-priority"):
        assert form.labels[control], f"{control} has no label"

    # tiny-text's own default (64), not TextParams' (128); bounds and steps from the schema.
    tokens = form.inputs["param-max_new_tokens"]
    assert tokens == tokens | {
        "type": "number", "data-type": "integer", "value": "64", "min": "1", "max": "4096",
        "step": "1",
    }  # fmt: skip
    temperature = form.inputs["param-temperature"]
    assert temperature == temperature | {
        "data-type": "number",
        "value": "0.7",
        "min": "0.0",
        "max": "2.0",
        "step": "any",
    }
    # Optional with no default: starts empty, not required.
    seed = form.inputs["param-seed"]
    assert seed["value"] == "" and seed["max"] == "4294967295" and "required" not in seed

    models = _get(client, team, "/ui/parts/jobs/models", kind="image")
    assert models.selected("job-model-name") == ["tiny-image"]
    width = models.inputs["param-width"]
    assert width == width | {"value": "64", "min": "64", "max": "2048", "step": "8"}
    negative = models.inputs["param-negative_prompt"]
    assert negative == negative | {
        "type": "text",
        "data-type": "string",
        "value": "",
        "maxlength": "2000",
    }
    assert (
        "Denoising steps."
        in client.get("/ui/parts/jobs/new", params={"kind": "image"}, headers=team.headers).text
    )


def test_every_parameter_of_every_model_has_a_labelled_input(
    client: TestClient, team: TeamKey
) -> None:
    """The page has no list of parameters: whatever a model's schema holds is on the form."""
    catalog: Catalog = client.app.state.catalog  # type: ignore[attr-defined]
    for spec in catalog:
        params = _get(client, team, "/ui/parts/jobs/params", model=spec.name)
        properties = spec.params_schema()["properties"]
        assert set(properties) == {str(field["data-param"]) for field in params.inputs.values()}
        for name, prop in properties.items():
            assert params.labels[f"param-{name}"] == name
            if prop.get("default") is not None:
                assert params.inputs[f"param-{name}"]["value"] == json.dumps(prop["default"])


def test_a_parameter_added_to_a_kind_appears_with_no_page_change(
    client: TestClient, team: TeamKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Upscale(StrEnum):
        NONE = "none"
        TWICE = "2x"

    class MoreImageParams(ImageParams):
        tiled: bool = Field(False, description="Seamless tiles.")
        upscale: Upscale = Upscale.NONE
        strength: float | None = Field(None, gt=0, le=1)

    monkeypatch.setitem(PARAMS_BY_KIND, Kind.IMAGE, MoreImageParams)
    params = _get(client, team, "/ui/parts/jobs/params", model="tiny-image")
    tiled = params.inputs["param-tiled"]
    assert tiled == tiled | {"type": "checkbox", "data-type": "boolean"} and "checked" not in tiled
    assert params.options["param-upscale"] == [("none", True), ("2x", False)]
    strength = params.inputs["param-strength"]
    assert strength == strength | {"data-type": "number", "value": "", "min": "0", "max": "1"}
    assert params.labels["param-strength"] == "strength"


def test_each_schema_type_gets_its_input() -> None:
    """What pydantic emits for booleans, Literals, enums, Optional and nested values."""
    schema = {
        "$defs": {"Colour": {"enum": ["red", "blue"], "type": "string"}},
        "required": ["colour"],
        "properties": {
            "tiled": {"type": "boolean", "default": True},
            "loop": {"anyOf": [{"type": "boolean"}, {"type": "null"}], "default": None},
            "style": {"enum": ["a", "b"], "type": "string", "default": "b"},
            "mode": {"anyOf": [{"const": "fast", "type": "string"}, {"type": "null"}]},
            "colour": {"$ref": "#/$defs/Colour"},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "count": {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
            "sizes": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
        },
    }
    fields = {field.name: field for field in param_fields(schema)}
    assert (fields["tiled"].widget, fields["tiled"].value) == ("checkbox", "true")
    assert fields["loop"].widget == "select" and fields["loop"].choices == ("", "true", "false")
    assert (fields["style"].choices, fields["style"].value) == (("a", "b"), "b")
    assert fields["mode"].choices == ("", "fast") and not fields["mode"].required
    assert fields["colour"].choices == ("red", "blue") and fields["colour"].required
    assert (fields["ratio"].minimum, fields["ratio"].maximum, fields["ratio"].step) == (
        "0",
        "1",
        "any",
    )
    assert (fields["count"].minimum, fields["count"].maximum) == ("1", "9")
    assert (fields["sizes"].type, fields["sizes"].widget) == ("json", "text")


@pytest.mark.parametrize(
    ("path", "params", "status", "field"),
    [
        ("/ui/parts/jobs/params", {"model": "no-such-model"}, 404, "model"),
        ("/ui/parts/jobs/params", {"model": "x" * 257}, 422, "model"),
        ("/ui/parts/jobs/params", {}, 422, "model"),
        ("/ui/parts/jobs/models", {"kind": "video"}, 422, "kind"),
        ("/ui/parts/jobs/new", {"kind": "video"}, 422, "kind"),
    ],
)
def test_bad_model_or_kind_is_4xx_naming_it(
    client: TestClient,
    team: TeamKey,
    path: str,
    params: dict[str, str],
    status: int,
    field: str,
) -> None:
    response = client.get(path, params=params, headers=team.headers)
    assert response.status_code == status, response.text
    assert field in {error["field"] for error in response.json()["error"]["errors"]}


def _submit(client: TestClient, team: TeamKey) -> str:
    body = {"kind": "text", "model": "echo", "prompt": "a red kite", "params": {"seed": 7}}
    response = client.post("/v1/jobs", json=body, headers=team.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def _live_attributes(html: str) -> bool:
    return 'hx-trigger="live"' in html and "data-live-events=" in html


def test_a_job_page_is_live_until_the_job_ends(
    client: TestClient, team: TeamKey, other_team: TeamKey
) -> None:
    job_id = _submit(client, team)
    page = client.get(f"/ui/parts/jobs/{job_id}", headers=team.headers)
    assert page.status_code == 200
    assert f'<span class="id">{job_id}</span>' in page.text
    assert ">queued</span>" in page.text and "a red kite" in page.text
    assert "<dd>7</dd>" in page.text  # the seed
    assert f'hx-get="/ui/parts/jobs/{job_id}/card"' in page.text
    assert f'data-live-events="/v1/jobs/{job_id}/events"' in page.text
    assert 'hx-swap="outerHTML"' in page.text and _live_attributes(page.text)
    assert 'href="/ui"' in page.text  # back to all batches
    card = client.get(f"/ui/parts/jobs/{job_id}/card", headers=team.headers)
    assert card.text.lstrip().startswith('<div id="job-card"') and _live_attributes(card.text)

    client.post(f"/v1/jobs/{job_id}/cancel", headers=team.headers).raise_for_status()
    card = client.get(f"/ui/parts/jobs/{job_id}/card", headers=team.headers)
    assert ">canceled</span>" in card.text
    assert not _live_attributes(card.text) and "hx-get" not in card.text
    assert re.search(r"<dt>Finished</dt>\s*<dd><time datetime=", card.text)


def test_a_finished_text_job_shows_its_output_and_a_download(
    client: TestClient, team: TeamKey, settings: Settings, db_engine: sa.Engine
) -> None:
    data = b"the echo of a red kite"
    with Session(db_engine) as session, session.begin():
        job = job_queries.create_job(
            session, kind="text", model="echo", prompt="a red kite", params={"seed": None},
            metadata={}, team_id=team.team_id, key_prefix=team.prefix,
        )  # fmt: skip
        [claimed] = job_queries.claim_jobs(session, [job.id], worker=WORKER, lease_s=60)
        key = f"jobs/{job.id.hex[:8]}/{job.id}-{claimed.attempts}-0.txt"
        LocalStore(settings.artifact_dir).put(key, data)
        artifact = job_queries.NewArtifact(
            index=0, mime_type="text/plain", size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), storage_key=key, facts={},
        )  # fmt: skip
        job_queries.succeed_jobs(
            session, worker=WORKER, runs={job.id: claimed.attempts}, artifacts={job.id: [artifact]}
        )
        job_id = job.id
    page = client.get(f"/ui/parts/jobs/{job_id}", headers=team.headers)
    assert page.status_code == 200
    assert '<pre class="preview">the echo of a red kite</pre>' in page.text
    assert "Download artifact 0</a>" in page.text and "/v1/artifacts/" in page.text
    assert "<dd>none</dd>" in page.text  # no seed given
    assert not _live_attributes(page.text)


@pytest.mark.parametrize("part", ["", "/card"])
def test_another_teams_or_an_unknown_job_is_404_naming_it(
    client: TestClient, team: TeamKey, other_team: TeamKey, part: str
) -> None:
    job_id = _submit(client, team)
    for who, ident in ((other_team, job_id), (team, str(uuid.uuid4()))):
        response = client.get(f"/ui/parts/jobs/{ident}{part}", headers=who.headers)
        assert response.status_code == 404
        assert response.json()["error"]["message"] == f"job {ident} does not exist"


@pytest.mark.parametrize(
    "path",
    [
        "/ui/parts/jobs/new",
        "/ui/parts/jobs/models?kind=text",
        "/ui/parts/jobs/params?model=echo",
        f"/ui/parts/jobs/{uuid.uuid4()}",
        f"/ui/parts/jobs/{uuid.uuid4()}/card",
    ],
)
def test_job_fragments_need_a_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_job_pages_are_shells_and_the_batches_page_links_the_form(
    client: TestClient, team: TeamKey
) -> None:
    job_id = uuid.uuid4()
    assert 'data-start="/ui/parts/jobs/new"' in client.get("/ui/jobs/new").text
    assert f'data-start="/ui/parts/jobs/{job_id}"' in client.get(f"/ui/jobs/{job_id}").text
    batches = client.get("/ui/parts/batches", headers=team.headers).text
    assert re.search(
        r'hx-get="/ui/parts/jobs/new"[^>]*hx-push-url="/ui/jobs/new">Submit one job', batches
    )
    assert client.get("/ui/static/job_form.js").status_code == 200
