"""The SSRF guard: webhook URLs must not reach the gateway's own network.

Loopback, private (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), unspecified, multicast, reserved,
shared (CGNAT 100.64/10) and other non-global addresses are refused, also when wrapped in IPv6 (IPv4-mapped
``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``), unless the operator allows them
(``[webhooks] allow_private = true``).

Two checks work together:

- `check_url` when a URL is accepted (and before each delivery through a session without the guard): its form,
  and every address its host resolves to;
- `GuardedResolver` in the delivery session's connector: the addresses actually connected to are checked at
  connect time, so a name re-pointed after the first check (DNS rebinding) is still refused.
  (aiohttp does not ask the resolver about IP literals; `check_url_static` covers those.)
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2048
#: how long `check_url` waits for a name to resolve
RESOLVE_TIMEOUT_S = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: a host made only of numbers (decimal, octal, hex) that is not a dotted-quad: `127.1`, `2130706433`, `0x7f.1`
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?")

_KINDS = "a loopback, private, link-local or otherwise non-public address, which this gateway does not call"
#: the problem when a host name resolves to a refused address (the address itself is not told to the client)
REFUSED = f"resolves to {_KINDS}"


class Resolver(Protocol):
    """What `check_url` needs of a resolver (aiohttp's `AbstractResolver` fits)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]: ...


class AddressRefused(OSError):
    """A webhook host resolved to an address the guard refuses (raised by `GuardedResolver`)."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def refusal_reason(address: str | IPAddress) -> str | None:
    """Why a webhook may not reach `address` ("loopback", "private", ...), or None for a public address."""
    if isinstance(address, str):
        try:
            ip: IPAddress = ipaddress.ip_address(address)
        except ValueError:
            return "not an IP address"
    else:
        ip = address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped (zone id)"
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = refusal_reason(inner)
            return f"{reason}, embedded in IPv6" if reason else None
        if ip.is_site_local:
            return "site-local"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "shared (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def address_refused(address: str | IPAddress) -> bool:
    """True for addresses a webhook may not reach unless private targets are allowed."""
    return refusal_reason(address) is not None


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_url_syntax(url: str) -> str | None:
    """A problem with the URL's form (scheme, host, credentials, port, length), or None."""
    if not isinstance(url, str) or not url:
        return "must be a non-empty URL"
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (malformed host or port)"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if "@" in parts.netloc:
        return "must not carry credentials (user info)"
    host = parts.hostname
    if not host:
        return "must name a host"
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        return "has an invalid port"
    if _literal(host) is None and _NUMERIC_HOST.fullmatch(host):
        return "must write an IPv4 address as four decimal numbers"
    return None


def check_url_static(url: str, *, allow_private: bool) -> str | None:
    """`check_url_syntax`, and the address of an IP-literal host; no DNS lookup."""
    problem = check_url_syntax(url)
    if problem or allow_private:
        return problem
    ip = _literal(urlsplit(url).hostname or "")
    if ip is not None and address_refused(ip):
        return f"is {_KINDS}"
    return None


async def _resolve(host: str, resolver: Resolver | None) -> list[str]:
    if resolver is not None:
        return [result["host"] for result in await resolver.resolve(host, 0, socket.AF_UNSPEC)]
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(
    url: str, *, allow_private: bool, resolver: Resolver | None = None, timeout_s: float = RESOLVE_TIMEOUT_S
) -> str | None:
    """A problem with the URL, or None: its form, an IP-literal host's address, or any address its host name
    resolves to (through `resolver`, else the event loop's getaddrinfo). Every address must be allowed.

    With `allow_private` only the form is checked (no lookup). Messages never name the resolved address.
    """
    problem = check_url_static(url, allow_private=allow_private)
    if problem or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    if _literal(host) is not None:
        return None  # checked above
    try:
        async with asyncio.timeout(timeout_s):
            addresses = await _resolve(host, resolver)
    except TimeoutError:
        return "host did not resolve in time"
    except (OSError, UnicodeError):
        return "host does not resolve"
    if not addresses:
        return "host does not resolve"
    if any(address_refused(address) for address in addresses):
        return REFUSED
    return None


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver refusing hosts that resolve to a refused address, for a `TCPConnector`.

    The connector connects only to addresses this resolver returned, so the check is on the address actually
    used (no window for DNS rebinding). Any refused address among the results refuses the host: `AddressRefused`
    (an OSError; aiohttp raises it as the cause of a `ClientConnectorError`).
    """

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self._inner = inner

    @property
    def inner(self) -> AbstractResolver:
        if self._inner is None:
            self._inner = DefaultResolver()  # needs the running loop: made on first use
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily | int = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)  # type: ignore[arg-type]
        if not results:
            raise OSError(f"webhook host {host!r} does not resolve")
        if not self.allow_private:
            for result in results:
                reason = refusal_reason(result["host"])
                if reason:
                    raise AddressRefused(
                        f"webhook host {host!r} resolves to {result['host']} ({reason}); refused "
                        "(webhooks.allow_private is off)"
                    )
        return results

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()
