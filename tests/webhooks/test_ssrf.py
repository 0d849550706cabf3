"""The SSRF guard: every refused range, as a literal address and behind a name (an injected
resolver), IPv4 and IPv6 with the embedded forms; refusal comes before any connection. No
test here sends anything anywhere but to a loopback socket it opened itself."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import get_args

import pytest
import sqlalchemy as sa

from aigc.settings import Settings
from aigc.ssrf import (
    RefusedDestination,
    check_submitted_url,
    parse_webhook_url,
    resolve_destination,
)
from aigc.webhooks.events import BATCH_FILTERS, JOB_FILTERS
from api.schemas import BatchEventFilter, JobEventFilter
from db.session import make_session_factory
from db.webhooks import DueDelivery
from workers.deliverer import Deliverer

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "not a public",  # carrier-grade NAT
    "198.18.0.1": "private",  # benchmarking
    "192.0.2.1": "private",  # documentation
    "2001:db8::1": "private",  # documentation
    "169.254.169.254": "metadata",
    "169.254.170.2": "metadata",
    "fd00:ec2::254": "metadata",
    "100.100.100.200": "metadata",
    # IPv6 forms that carry an IPv4 address are judged by it.
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "metadata",
    "::127.0.0.1": "loopback",  # IPv4-compatible
    "2002:7f00:1::": "loopback",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::": "metadata",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe": "metadata",  # NAT64 of 169.254.169.254
    "64:ff9b::a00:1": "private",  # NAT64 of 10.0.0.1
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
# Allowed with AIGC_WEBHOOK_ALLOW_PRIVATE; the metadata addresses never are.
PRIVATE_OK = ["127.0.0.1", "::1", "10.1.2.3", "192.168.1.1", "fd12:3456::1", "169.254.1.1"]
METADATA = ["169.254.169.254", "fd00:ec2::254", "100.100.100.200", "::ffff:169.254.169.254"]


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hook"


def _resolver(table: dict[str, Sequence[str]]) -> object:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_literal_addresses_in_refused_ranges_are_refused(address: str, why: str) -> None:
    with pytest.raises(RefusedDestination, match=why):
        check_submitted_url(_url(address), allow_http=False, allow_private=False)
    with pytest.raises(RefusedDestination, match=why):
        resolve_destination(parse_webhook_url(_url(address), allow_http=False), allow_private=False)


@pytest.mark.parametrize(("address", "why"), REFUSED.items())
def test_names_resolving_into_refused_ranges_are_refused(address: str, why: str) -> None:
    parsed = parse_webhook_url("https://hooks.example.com:8443/x?y=1", allow_http=False)
    resolver = _resolver({"hooks.example.com": [address]})
    with pytest.raises(RefusedDestination, match=why):
        resolve_destination(parsed, allow_private=False, resolver=resolver)  # type: ignore[arg-type]


def test_one_refused_address_among_public_ones_refuses_the_name() -> None:
    parsed = parse_webhook_url("https://mixed.example.com/", allow_http=False)
    resolver = _resolver({"mixed.example.com": ["8.8.8.8", "10.0.0.5"]})
    with pytest.raises(RefusedDestination, match="private"):
        resolve_destination(parsed, allow_private=False, resolver=resolver)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_and_the_checked_address_is_the_one_connected_to(
    address: str,
) -> None:
    parsed = parse_webhook_url("https://hooks.example.com:8443/x?y=1", allow_http=False)
    destination = resolve_destination(
        parsed,
        allow_private=False,
        resolver=_resolver({"hooks.example.com": [address]}),  # type: ignore[arg-type]
    )
    host = f"[{destination.address}]" if destination.address.version == 6 else address
    assert destination.connect_url == f"https://{host}:8443/x?y=1"
    assert destination.host_header == "hooks.example.com:8443"
    assert destination.sni_hostname == "hooks.example.com"


@pytest.mark.parametrize("address", PRIVATE_OK)
def test_allow_private_lets_private_ranges_through(address: str) -> None:
    check_submitted_url(_url(address), allow_http=False, allow_private=True)
    parsed = parse_webhook_url("https://internal.example/", allow_http=False)
    resolver = _resolver({"internal.example": [address]})
    resolve_destination(parsed, allow_private=True, resolver=resolver)  # type: ignore[arg-type]


@pytest.mark.parametrize("address", METADATA)
def test_metadata_addresses_stay_refused_even_with_allow_private(address: str) -> None:
    with pytest.raises(RefusedDestination, match="metadata"):
        check_submitted_url(_url(address), allow_http=False, allow_private=True)
    parsed = parse_webhook_url("https://metadata.example/", allow_http=False)
    resolver = _resolver({"metadata.example": [address]})
    with pytest.raises(RefusedDestination, match="metadata"):
        resolve_destination(parsed, allow_private=True, resolver=resolver)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/", "https"),
        ("ftp://hooks.example.com/", "https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://user@hooks.example.com/", "credentials"),
        ("https:///nohost", "host"),
        ("https://hooks.example.com:99999/", "valid URL"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hooks.example.com/" + "a" * 2100, "2048"),
        ("https://localhost/", "loopback"),
        ("https://api.localhost./", "loopback"),
    ],
)
def test_bad_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(RefusedDestination, match=why):
        check_submitted_url(url, allow_http=False, allow_private=False)


def test_http_only_where_allowed() -> None:
    assert check_submitted_url("http://hooks.example.com/", allow_http=True, allow_private=False)


def test_an_unresolvable_name_is_refused() -> None:
    parsed = parse_webhook_url("https://nowhere.invalid/", allow_http=False)
    with pytest.raises(RefusedDestination, match="does not resolve"):
        resolve_destination(parsed, allow_private=False, resolver=_resolver({}))  # type: ignore[arg-type]


def test_the_schema_filters_are_the_vocabulary() -> None:
    assert set(get_args(JobEventFilter)) == set(JOB_FILTERS)
    assert set(get_args(BatchEventFilter)) == set(BATCH_FILTERS)


@pytest.fixture
def loopback_listener() -> Iterator[socket.socket]:
    """A loopback socket that would accept a connection if the guard let one through."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        yield listener


def test_the_deliverer_refuses_before_connecting(
    settings: Settings, db_engine: sa.Engine, loopback_listener: socket.socket
) -> None:
    """A name resolving to loopback, with private addresses not allowed: the attempt is
    refused and recorded as such, and the listener behind that address saw no connection."""
    port = loopback_listener.getsockname()[1]
    deliverer = Deliverer(
        settings.model_copy(update={"webhook_allow_private": False}),
        db_engine,
        make_session_factory(db_engine),
        resolver=_resolver({"rebind.example": ["127.0.0.1"]}),  # type: ignore[arg-type]
    )
    due = DueDelivery(
        id=uuid.uuid4(),
        team_id=uuid.uuid4(),
        msg_id="msg_test",
        url=f"https://rebind.example:{port}/hook",
        payload={"type": "job.completed", "timestamp": "now", "data": {}},
        attempts=0,
        deadline_at=datetime.now(UTC),
        lease=datetime.now(UTC),
    )

    async def attempt() -> tuple[int | None, str | None, str | None]:
        async with deliverer.client() as client:
            return await deliverer._attempt(client, due, ["whsec_" + "A" * 43])

    status, error, snippet = asyncio.run(attempt())
    assert status is None and snippet is None
    assert error is not None and "loopback" in error and error.startswith("refused")
    with pytest.raises(BlockingIOError):
        loopback_listener.accept()
