"""`aigc batch` without a stack: the local checks and the errors that need no API."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aigc.cli.batch import safe_name, validate_jsonl
from aigc.cli.main import app
from aigc.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens: any request to it fails to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No AIGC_API_KEY and an empty AIGC_VAR_DIR (no key file) until the test sets one."""
    monkeypatch.delenv("AIGC_API_KEY", raising=False)
    monkeypatch.setenv("AIGC_VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_local_checks_name_each_bad_line() -> None:
    good = {"custom_id": "a", "kind": "image", "prompt": "p", "params": {"steps": 2}}
    lines = [
        json.dumps(good),
        "",  # blank lines are skipped, as the server skips them
        "[1, 2]",
        json.dumps({"custom_id": "a", "kind": "text", "prompt": "again"}),
        json.dumps({"custom_id": "c", "kind": "video", "prompt": "p"}),
        json.dumps({"custom_id": "d", "kind": "image", "prompt": "p", "params": {"width": 65}}),
    ]
    errors = validate_jsonl("\n".join(lines).encode())
    assert [(e["line"], e["field"]) for e in errors] == [
        (3, "line"),
        (4, "custom_id"),
        (5, "kind"),
        (6, "params.width"),
    ]
    assert "line 1" in errors[1]["message"]


def test_local_checks_use_the_strict_decoder() -> None:
    lines = [
        '{"custom_id": "a", "kind": "text", "prompt": "p", "params": {"seed": NaN}}',
        '{"custom_id": "b", "kind": "text", "prompt": "p", "custom_id": "c"}',
        '{"custom_id": "d", "kind": "text", "prompt": "\\ud800"}',
    ]
    errors = validate_jsonl("\n".join(lines).encode())
    assert [(e["line"], e["field"]) for e in errors] == [
        (1, "params.seed"),
        (2, "custom_id"),
        (3, "prompt"),
    ]


def test_empty_file_is_refused() -> None:
    assert [e["field"] for e in validate_jsonl(b"\n\n")] == ["jobs"]


def test_bad_file_exits_2_before_any_request(tmp_path: Path, dead_url: str) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text('{"kind": "text", "prompt": "no id"}\n')
    # An unreachable API would exit 1: exit 2 shows nothing was attempted.
    result = runner.invoke(app, ["batch", "submit", str(source), "--api-url", dead_url])
    assert result.exit_code == 2
    assert "line 1: custom_id" in result.stderr


def test_unreachable_api_is_one_line_naming_the_url(
    tmp_path: Path, dead_url: str, key_env: pytest.MonkeyPatch
) -> None:
    key_env.setenv("AIGC_API_KEY", "aigc_00000000_" + "k" * 43)
    get_settings.cache_clear()
    source = tmp_path / "ok.jsonl"
    source.write_text('{"custom_id": "a", "kind": "text", "prompt": "hi"}\n')
    for args in (["submit", str(source)], ["status", "x"], ["results", "x", "-o", str(tmp_path)]):
        result = runner.invoke(app, ["batch", *args, "--api-url", dead_url])
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"cannot reach the API at {dead_url}")
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("custom_id", "name"),
    [("img-1.v2", "img-1.v2"), ("../../etc/passwd", "etc_passwd"), ("..", "job"), (None, "job")],
)
def test_custom_ids_become_plain_file_names(custom_id: str | None, name: str) -> None:
    assert safe_name(custom_id) == name


def test_a_missing_key_is_one_clear_line(
    tmp_path: Path, dead_url: str, key_env: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["batch", "status", "x", "--api-url", dead_url])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("no API key: set AIGC_API_KEY, or run `aigc up`")
    assert str(tmp_path / "var" / "api-key") in line


def test_the_key_file_of_aigc_up_is_used(tmp_path: Path, dead_url: str, key_env: None) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "api-key").write_text("aigc_00000000_" + "k" * 43 + "\n")
    result = runner.invoke(app, ["batch", "status", "x", "--api-url", dead_url])
    # The key was found: the command went on to call the API.
    assert result.exit_code == 1
    assert result.stderr.startswith(f"cannot reach the API at {dead_url}")


def test_the_key_setting_is_a_secret() -> None:
    key = "aigc_00000000_" + "s" * 43
    settings = Settings(api_key=key)
    assert settings.api_key is not None and settings.api_key.get_secret_value() == key
    assert key not in repr(settings) and key not in str(settings.model_dump())
