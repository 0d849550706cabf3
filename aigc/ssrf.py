"""Where a webhook may go: the guard against server-side request forgery.

A webhook URL is a customer's instruction to make this service send a request, from inside
the deployment's network. So before each delivery the host is resolved and the request goes
only if EVERY address it resolves to is a public one: no loopback, private, link-local,
multicast, unspecified, reserved or otherwise non-global address, and never a cloud metadata
service. IPv6 addresses that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
IPv4-compatible, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`, Teredo) are judged by that IPv4
address. The request then connects to the address that was checked (not to the name again,
which a rebinding DNS server could answer differently), follows no redirect and reads only a
little of the answer (workers.deliverer).

`AIGC_WEBHOOK_ALLOW_PRIVATE` lets loopback, private and link-local addresses through, for a
receiver inside the deployment's own network; the metadata addresses stay refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port → the addresses it resolves to (socket.getaddrinfo by default; tests inject).
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_CHARS = 2048
# Cloud metadata services: AWS/GCP/Azure/OpenStack, AWS ECS task metadata, AWS IPv6, Alibaba.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")


class RefusedDestination(ValueError):
    """A webhook URL this service will not send to; the message says why (no secret in it)."""


@dataclass(frozen=True)
class WebhookUrl:
    """A URL that passed the syntax checks."""

    url: str
    scheme: str
    host: str  # lower case; an IPv6 literal without brackets
    port: int
    target: str  # path and query, at least "/"


@dataclass(frozen=True)
class Destination:
    """Where to connect for a checked URL: the URL with the checked address in place of the
    name, and what to send as Host and as the TLS server name."""

    connect_url: str
    host_header: str
    sni_hostname: str
    address: IPAddress


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where it stands for one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a request may not go to `address`, or None when it may."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner, allow_private=allow_private)
            return f"{reason} (inside {address})" if reason else None
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified or (
        isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK
    ):
        return "an unspecified address"
    if address.is_loopback:
        return None if allow_private else "a loopback address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_global or allow_private:
        return None
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def parse_webhook_url(url: str, *, allow_http: bool) -> WebhookUrl:
    """The URL's parts, or RefusedDestination: https only (http where allowed), a host, no
    credentials, at most MAX_URL_CHARS."""
    if len(url) > MAX_URL_CHARS:
        raise RefusedDestination(f"at most {MAX_URL_CHARS} characters")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise RefusedDestination("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedDestination(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_http):
        raise RefusedDestination(
            "must be an https URL" + ("" if allow_http else " (http is not allowed here)")
        )
    if parts.username is not None or parts.password is not None:
        raise RefusedDestination("must not contain credentials (user:password@)")
    host = (parts.hostname or "").lower()
    if not host:
        raise RefusedDestination("must name a host")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return WebhookUrl(
        url=url,
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        target=target,
    )


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_submitted_url(url: str, *, allow_http: bool, allow_private: bool) -> WebhookUrl:
    """What the API checks when a URL is submitted: the syntax, and a literal address or
    `localhost` in a refused range. Names are resolved at each delivery, not here (DNS
    answers change)."""
    parsed = parse_webhook_url(url, allow_http=allow_http)
    address = literal_address(parsed.host)
    if address is not None:
        reason = refusal(address, allow_private=allow_private)
        if reason:
            raise RefusedDestination(f"points at {reason}")
    elif _is_localhost(parsed.host) and not allow_private:
        raise RefusedDestination("points at a loopback address")
    return parsed


def _is_localhost(host: str) -> bool:
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def system_resolver(host: str, port: int) -> list[str]:
    return [
        str(info[4][0])
        for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if info[0] in (socket.AF_INET, socket.AF_INET6)
    ]


def resolve_destination(
    parsed: WebhookUrl, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Destination:
    """Resolve the host and check every address it has; the destination to connect to is
    the first. RefusedDestination when any address is refused or none is found. Nothing
    is connected to here."""
    address = literal_address(parsed.host)
    if address is not None:
        addresses: list[IPAddress] = [address]
    else:
        if _is_localhost(parsed.host) and not allow_private:
            raise RefusedDestination("points at a loopback address")
        try:
            found = resolver(parsed.host, parsed.port)
        except (OSError, UnicodeError) as exc:
            raise RefusedDestination(f"host {parsed.host!r} does not resolve ({exc})") from None
        addresses = []
        for text in found:
            # A scoped IPv6 address (fe80::1%eth0) names its zone after the %.
            parsed_address = literal_address(text.split("%", 1)[0])
            if parsed_address is None:
                raise RefusedDestination(f"host {parsed.host!r} resolved to {text!r}")
            addresses.append(parsed_address)
        if not addresses:
            raise RefusedDestination(f"host {parsed.host!r} has no address")
    for candidate in addresses:
        reason = refusal(candidate, allow_private=allow_private)
        if reason:
            raise RefusedDestination(f"host {parsed.host!r} resolves to {reason}")
    chosen = addresses[0]
    netloc = f"[{chosen}]" if chosen.version == 6 else str(chosen)
    default_port = 443 if parsed.scheme == "https" else 80
    host_header = _bracketed(parsed.host)
    if parsed.port != default_port:
        host_header += f":{parsed.port}"
    return Destination(
        connect_url=f"{parsed.scheme}://{netloc}:{parsed.port}{parsed.target}",
        host_header=host_header,
        sni_hostname=parsed.host,
        address=chosen,
    )


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
