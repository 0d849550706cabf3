"""The /ui routes through TestClient on the real PostgreSQL: the shell needs no key and
carries no data; every fragment needs a key and shows only the caller's team."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from aigc.settings import Settings
from api.main import create_app
from api.ui.router import age
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
    assert "the oldest has waited" in listing.text  # nothing has run: all queued
    # Queued: its event stream refreshes the list until it ends.
    assert f'data-live-events="/v1/batches/{batch_id}/events' in listing.text
    theirs = client.get("/ui/parts/batches", headers=other_team.headers)
    assert batch_id not in theirs.text
    for part in ("", "/summary", "/items"):
        path = f"/ui/parts/batches/{batch_id}{part}"
        assert client.get(path, headers=team.headers).status_code == 200
        assert client.get(path, headers=other_team.headers).status_code == 404


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0 s"), (59, "59 s"), (60, "1 min"), (7300, "2 h"), (90000, "1 d")]
)
def test_a_wait_is_shown_in_the_largest_unit_that_fits(seconds: int, shown: str) -> None:
    assert age(timedelta(seconds=seconds)) == shown


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
        ("jobs.csv", b"prompt,colour\nhi,red\n", "column 'colour': unknown column"),
        ("jobs.csv", b"custom_id\na\n", "row 1, column 'prompt'"),
        ("jobs.csv", b"prompt\n", "no rows"),
        ("jobs.csv", b"\xff\xfe", "UTF-8"),
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


def _preview(client: TestClient, team: TeamKey, name: str, body: bytes) -> str:
    response = client.post(
        "/ui/parts/tables/preview", params={"name": name}, content=body, headers=team.headers
    )
    assert response.status_code == 200, response.text
    return response.text


def test_a_preview_maps_the_columns_and_shows_the_first_jobs_as_stored(
    client: TestClient, team: TeamKey
) -> None:
    rows = "".join(f"prompt {n},c{n},\n" for n in range(7))
    page = _preview(
        client, team, "campaign.csv", f"prompt,custom_id,params.max_new_tokens\n{rows}".encode()
    )
    assert "campaign.csv: 7 rows" in page
    assert "<td>params.max_new_tokens</td>" in page
    assert "params entry &#39;max_new_tokens&#39;" in page
    # Five sample jobs, with the model each will run (the kind's default, none was named).
    assert page.count("<td>text</td>") == 5 and "<td>c4</td>" in page and "<td>c5</td>" not in page
    assert "<td>tiny-text</td>" in page or "<td>echo</td>" in page
    assert 'id="submit-batch">Submit 7 jobs<' in page
    assert "error" not in page.split("</table>")[-1]


def test_a_preview_lists_every_bad_row_with_its_column_and_offers_no_submit(
    client: TestClient, team: TeamKey
) -> None:
    body = (
        b"prompt,model,params.max_new_tokens,colour\n"
        b"fine,echo,4,\n"
        b"a,no-such-model,,\n"
        b",echo,,\n"
        b"b,echo,-5,\n"
        b"c,echo,,red\n"
        b"d,echo,9999999,\n"
    )
    page = _preview(client, team, "bad.csv", body)
    assert "bad.csv: 6 rows" in page
    assert "<td>colour</td>" in page and "not a known column" in page
    assert "5 errors" in page
    for says in (
        "Row 2, model:",
        "Row 3, prompt: is required",
        "Row 4, params.max_new_tokens:",
        "Row 6, params.max_new_tokens:",
        "colour: unknown column",
    ):
        assert says in page, says
    assert page.index("colour: unknown") < page.index("Row 2,") < page.index("Row 6,")
    assert "submit-batch" not in page


def test_a_preview_checks_jsonl_and_whole_files(client: TestClient, team: TeamKey) -> None:
    good = b'{"custom_id": "j1", "kind": "text", "model": "echo", "prompt": "hi"}\n'
    assert "Submit 1 job<" in _preview(client, team, "jobs.jsonl", good)
    page = _preview(client, team, "jobs.jsonl", good + b'{"kind": "text", "prompt": "x"}\nnope\n')
    assert "Row 2, custom_id: is required" in page or "Row 3," in page
    assert "submit-batch" not in page
    broken = _preview(client, team, "jobs.xlsx", b"not a zip")
    assert "file: not a readable XLSX workbook" in broken and "submit-batch" not in broken
    workbook = _xlsx([["prompt", "custom_id"], ["a kite", "k"]])
    assert "Submit 1 job<" in _preview(client, team, "jobs.xlsx", workbook)


def test_a_preview_needs_a_key(client: TestClient) -> None:
    response = client.post(
        "/ui/parts/tables/preview", params={"name": "a.csv"}, content=b"prompt\nhi\n"
    )
    assert response.status_code == 401
