"""The metrics settings refuse what cannot work, naming the variable; the token check."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from aigc.metrics import authorized
from aigc.settings import Settings


@pytest.mark.parametrize(
    "field,value",
    [
        ("metrics_token", "short"),
        ("worker_metrics_port", 65536),
        ("dispatcher_metrics_port", -1),
    ],
)
def test_bad_metrics_settings_are_refused_by_name(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(**{field: value})
    assert raised.value.errors()[0]["loc"] == (field,)


def test_the_token_never_shows_in_the_settings_repr() -> None:
    token = "a-long-random-metrics-token-0123"
    assert token not in repr(Settings(metrics_token=token))


def test_the_bearer_token_must_match_exactly() -> None:
    token = SecretStr("0123456789abcdef")
    assert authorized(token, "Bearer 0123456789abcdef")
    assert not authorized(token, None)
    assert not authorized(token, "Bearer 0123456789abcdeF")
    assert not authorized(token, "0123456789abcdef")
    # No token set: open.
    assert authorized(None, None)


def test_a_worker_metrics_port_out_of_range_is_refused_by_name() -> None:
    from typer.testing import CliRunner

    from aigc.cli.main import app

    result = CliRunner().invoke(app, ["worker", "--metrics-port", "70000"])
    assert result.exit_code == 2
    assert "--metrics-port" in result.output
