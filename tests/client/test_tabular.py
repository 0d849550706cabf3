"""CSV rows as a batch's jobs (aigc.tabular), which the SDK and the web page share."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc.tabular import read_csv, rows_to_jobs


def test_columns_become_job_fields_params_parsed_as_json() -> None:
    data = (
        "\ufeffprompt,kind,model,custom_id,params.max_new_tokens,params.stop,metadata.n\n"
        'a cat,text,echo,c-1,16,"not json",7\n'
        "a dog,,,c-2,,,\n"
    ).encode()
    assert rows_to_jobs(read_csv(data)) == [
        {
            "kind": "text",
            "prompt": "a cat",
            "model": "echo",
            "custom_id": "c-1",
            "params": {"max_new_tokens": 16, "stop": "not json"},
            "metadata": {"n": "7"},
        },
        {"kind": "text", "prompt": "a dog", "custom_id": "c-2"},
    ]


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("prompt,colour\nhi,red\n", "column 'colour': unknown column"),
        ("prompt,kind\nhi,text\n,text\n", "row 2, column 'prompt': is required"),
        ("prompt,params.\nhi,1\n", "column 'params.': names no params entry"),
        ("prompt\nhi,extra\n", "row 1: more cells than the header has columns"),
        ("prompt\n", "the table has no rows"),
    ],
)
def test_a_bad_row_names_its_row_and_column(csv_text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        rows_to_jobs(read_csv(csv_text.encode()))


def test_a_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("prompt\nhello\n", encoding="utf-8")
    assert rows_to_jobs(read_csv(path)) == [{"kind": "text", "prompt": "hello"}]
