"""The /ui routes through TestClient on the real PostgreSQL: the shell needs no key and
carries no data; every fragment needs a key and shows only the caller's team."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from aigc.settings import Settings
from api.main import create_app
from tests.conftest import TeamKey


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def _batch(client: TestClient, team: TeamKey) -> str:
    jobs = [
        {"custom_id": "kite-1", "kind": "text", "model": "echo", "prompt": "a red kite"},
        {"custom_id": "owl-2", "kind": "text", "model": "echo", "prompt": "100% owl_ish"},
    ]
    response = client.post("/v1/batches", json={"jobs": jobs}, headers=team.headers)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_shell_and_static_files_need_no_key_and_carry_no_data(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'data-start="/ui/parts/batches"' in page.text
    assert '<label for="key">API key</label>' in page.text
    assert "http" not in page.text  # same-origin paths only, no external assets
    batch_page = client.get(f"/ui/batches/{uuid.uuid4()}")
    assert batch_page.status_code == 200
    for asset in ("htmx.min.js", "ui.js", "ui.css"):
        assert client.get(f"/ui/static/{asset}").status_code == 200
    assert "/ui" not in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize("path", ["/ui/parts/batches", f"/ui/parts/batches/{uuid.uuid4()}/items"])
def test_fragments_need_a_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_fragments_show_the_team_and_its_batch_only(
    client: TestClient, team: TeamKey, other_team: TeamKey
) -> None:
    batch_id = _batch(client, team)
    listing = client.get("/ui/parts/batches", headers=team.headers)
    assert listing.status_code == 200
    assert team.name in listing.text and batch_id in listing.text
    assert "<progress" in listing.text
    assert 'hx-trigger="every 2s"' in listing.text  # queued: refreshed until it ends
    theirs = client.get("/ui/parts/batches", headers=other_team.headers)
    assert batch_id not in theirs.text
    for part in ("", "/summary", "/items"):
        path = f"/ui/parts/batches/{batch_id}{part}"
        assert client.get(path, headers=team.headers).status_code == 200
        assert client.get(path, headers=other_team.headers).status_code == 404


def test_items_filter_by_status_and_search_custom_id_and_prompt(
    client: TestClient, team: TeamKey
) -> None:
    batch_id = _batch(client, team)
    items = f"/ui/parts/batches/{batch_id}/items"

    def shown(**params: str) -> list[str]:
        response = client.get(items, params=params, headers=team.headers)
        assert response.status_code == 200, response.text
        return [name for name in ("kite-1", "owl-2") if f"<h2>{name}</h2>" in response.text]

    assert shown() == ["kite-1", "owl-2"]
    assert shown(status="queued") == ["kite-1", "owl-2"]
    assert shown(status="succeeded") == []
    assert shown(q="KITE") == ["kite-1"]
    assert shown(q="100%") == ["owl-2"]  # % is literal, not a wildcard
    assert shown(q="o_l") == []  # so is _ (as a wildcard it would match "owl")
    assert shown(q="owl") == ["owl-2"]


@pytest.mark.parametrize(
    ("params", "field"), [({"status": "bogus"}, "status"), ({"q": "x" * 201}, "q")]
)
def test_bad_filters_are_422_naming_the_field(
    client: TestClient, team: TeamKey, params: dict[str, str], field: str
) -> None:
    batch_id = _batch(client, team)
    response = client.get(
        f"/ui/parts/batches/{batch_id}/items", params=params, headers=team.headers
    )
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["error"]["errors"]}


def _xlsx(rows: list[list[object]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_tables_become_jobs_with_the_sdks_column_rules(client: TestClient, team: TeamKey) -> None:
    csv_body = b"\xef\xbb\xbfprompt,custom_id,kind,params.max_new_tokens\nhello,a,text,4\nbye,b,,\n"
    response = client.post(
        "/ui/parts/tables", params={"name": "Jobs.CSV"}, content=csv_body, headers=team.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "jobs": [
            {"kind": "text", "prompt": "hello", "custom_id": "a", "params": {"max_new_tokens": 4}},
            {"kind": "text", "prompt": "bye", "custom_id": "b"},
        ]
    }
    workbook = _xlsx([["prompt", "custom_id", "params.steps"], ["a kite", "k", 2], [None, None]])
    response = client.post(
        "/ui/parts/tables", params={"name": "jobs.xlsx"}, content=workbook, headers=team.headers
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "jobs": [{"kind": "text", "prompt": "a kite", "custom_id": "k", "params": {"steps": 2}}]
    }


@pytest.mark.parametrize(
    ("name", "body", "says"),
    [
        ("jobs.csv", b"prompt,colour\nhi,red\n", "row 1, column 'colour'"),
        ("jobs.csv", b"custom_id\na\n", "row 1, column 'prompt'"),
        ("jobs.csv", b"prompt\n", "no rows"),
        ("jobs.csv", b"\xff\xfe", "utf-8"),
        ("jobs.xlsx", b"not a zip", "not a readable XLSX"),
        ("jobs.txt", b"prompt\nhi\n", "must be a .csv or .xlsx"),
    ],
)
def test_bad_tables_are_422_on_the_file_field(
    client: TestClient, team: TeamKey, name: str, body: bytes, says: str
) -> None:
    response = client.post(
        "/ui/parts/tables", params={"name": name}, content=body, headers=team.headers
    )
    assert response.status_code == 422
    [error] = response.json()["error"]["errors"]
    assert error["field"] == "file" and says in error["message"]


def test_tables_need_a_key_and_a_bounded_name(client: TestClient, team: TeamKey) -> None:
    tables = "/ui/parts/tables"
    assert client.post(tables, params={"name": "a.csv"}, content=b"prompt\nhi\n").status_code == 401
    missing = client.post(tables, content=b"prompt\nhi\n", headers=team.headers)
    assert missing.status_code == 422
    long_name = {"name": "a" * 300 + ".csv"}
    assert client.post(tables, params=long_name, headers=team.headers).status_code == 422
