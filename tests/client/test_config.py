"""The client's configuration: where its key goes, and its bounds."""

from __future__ import annotations

import socket

import httpx
import pytest

from aigc.client import Client


def test_the_key_goes_only_to_the_api_itself() -> None:
    with Client("http://api.example:8000", "aigc_secret") as client:
        assert client.config.same_origin("/v1/artifacts/x")
        assert client.config.same_origin("http://api.example:8000/v1/artifacts/x")
        # A presigned store URL elsewhere authorises itself: the key is not sent there.
        assert not client.config.same_origin("http://store.example:8333/bucket/x?X-Amz=1")
        assert not client.config.same_origin("https://api.example:8000/v1/artifacts/x")
        assert "aigc_secret" not in repr(client)


def test_the_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIGC_API_URL", "http://elsewhere:9000/")
    monkeypatch.setenv("AIGC_API_KEY", "aigc_from_env")
    with Client() as client:
        assert client.config.base_url == "http://elsewhere:9000"
        assert client.http.headers["Authorization"] == "Bearer aigc_from_env"


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"max_retries": 11}, "max_retries"), ({"timeout_s": 0}, "timeout_s")]
)
def test_bounds_name_the_argument(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        Client("http://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_a_keyless_client_can_fetch_another_origin(dead_port_url: str) -> None:
    # No key configured, a URL elsewhere: the request goes out (and fails to connect).
    with Client("http://127.0.0.1:1", api_key="", max_retries=0) as client:
        assert "Authorization" not in client.http.headers
        with pytest.raises(httpx.ConnectError):
            client.request("GET", f"{dead_port_url}/bucket/x")


@pytest.fixture
def dead_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"
