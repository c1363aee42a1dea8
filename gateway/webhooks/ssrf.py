"""The SSRF guard: webhook URLs must not reach the gateway's own network (docs/webhooks.md, SSRF rules).

Public addresses are allowed. Every other kind (loopback, private RFC 1918 and fc00::/7, shared CGNAT, reserved,
...) is refused unless it lies in one of `[webhooks] allow_networks` (CIDRs), with two stricter rules:

- link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254) are allowed only by an entry
  inside one of those ranges (e.g. "169.254.169.254/32"): a broad entry such as "0.0.0.0/0" or "fd00::/8" does not
  open them;
- the unspecified address (0.0.0.0, ::, which reach the gateway's own host) and multicast are never allowed.

Addresses wrapped in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) are judged
by the IPv4 address they carry. A refusal names the rule, never the address a name resolved to.

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
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

MAX_URL_LENGTH = 2048
#: how long `check_url` waits for a name to resolve
RESOLVE_TIMEOUT_S = 5.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: reached only through an allow_networks entry inside one of these ranges
SENSITIVE_NETWORKS: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
#: a host made only of numbers (decimal, octal, hex) that is not a dotted-quad: `127.1`, `2130706433`, `0x7f.1`
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?")

SETTING = "webhooks.allow_networks"
#: the rule a refused kind of address breaks (the messages a client sees)
RULE_SENSITIVE = f"a link-local or cloud metadata address, reached only when {SETTING} names its range explicitly"
RULE_NEVER = "the unspecified or a multicast address, which no webhook may reach"
RULE_SCOPED = "a scoped IPv6 address (with a zone id), which no webhook may reach"


def _rule(kind: str) -> str:
    return f"a {kind} address, which is not in {SETTING}"


class Resolver(Protocol):
    """What `check_url` needs of a resolver (aiohttp's `AbstractResolver` fits)."""

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]: ...


#: a resolver `check_url` and `GuardedResolver` can use
AnyResolver = Resolver | AbstractResolver


class AddressRefused(OSError):
    """A webhook host resolved to an address the guard refuses (raised by `GuardedResolver`); the message names
    the host and the rule, not the address."""


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _effective(ip: IPAddress) -> IPAddress:
    """The address a connection really reaches: the IPv4 address inside an IPv6 wrapper, else `ip`."""
    if isinstance(ip, ipaddress.IPv6Address):
        return _embedded_ipv4(ip) or ip
    return ip


def address_kind(ip: IPAddress) -> str | None:
    """The kind of a non-public address ("loopback", "private", ...), or None for a public one."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "scoped (zone id)"
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


def _parse(address: str | IPAddress) -> IPAddress | None:
    if not isinstance(address, str):
        return address
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


class NetworkPolicy:
    """Which addresses a webhook may reach: public ones, and those `allow_networks` opens (module docstring)."""

    def __init__(self, allow_networks: Iterable[IPNetwork] = ()) -> None:
        self.allow_networks = tuple(allow_networks)
        #: the entries that may open link-local and metadata addresses: those inside such a range
        self._explicit = tuple(
            net
            for net in self.allow_networks
            if any(net.version == s.version and net.subnet_of(s) for s in SENSITIVE_NETWORKS)  # type: ignore[arg-type]
        )

    def _in(self, ip: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
        return any(ip.version == net.version and ip in net for net in networks)

    def refusal(self, address: str | IPAddress) -> str | None:
        """The rule `address` breaks (a message naming no address), or None when a webhook may reach it."""
        parsed = _parse(address)
        if parsed is None:
            return "not an IP address"
        ip = _effective(parsed)
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return RULE_SCOPED
        if ip.is_unspecified or ip.is_multicast:
            return RULE_NEVER
        if any(ip.version == s.version and ip in s for s in SENSITIVE_NETWORKS):
            return None if self._in(ip, self._explicit) else RULE_SENSITIVE
        kind = address_kind(ip)
        if kind is None or self._in(ip, self.allow_networks):
            return None
        return _rule(kind)


#: nothing but public addresses
PUBLIC_ONLY = NetworkPolicy()


def address_refused(address: str | IPAddress, policy: NetworkPolicy = PUBLIC_ONLY) -> bool:
    """True for addresses a webhook may not reach under `policy` (default: public addresses only)."""
    return policy.refusal(address) is not None


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
        return "must write an IPv4 address as four decimal numbers (no decimal, octal or hex forms)"
    return None


def check_url_static(url: str, policy: NetworkPolicy) -> str | None:
    """`check_url_syntax`, and the address of an IP-literal host; no DNS lookup."""
    problem = check_url_syntax(url)
    if problem:
        return problem
    ip = _literal(urlsplit(url).hostname or "")
    if ip is not None:
        rule = policy.refusal(ip)
        if rule:
            return f"is {rule}"
    return None


async def _resolve(host: str, resolver: AnyResolver | None) -> list[str]:
    if resolver is not None:
        return [result["host"] for result in await resolver.resolve(host, 0, socket.AF_UNSPEC)]
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def check_url(
    url: str, policy: NetworkPolicy, *, resolver: AnyResolver | None = None, timeout_s: float = RESOLVE_TIMEOUT_S
) -> str | None:
    """A problem with the URL, or None: its form, an IP-literal host's address, or any address its host name
    resolves to (through `resolver`, else the event loop's getaddrinfo). Every address must be allowed.

    Messages name the rule, never a resolved address.
    """
    problem = check_url_static(url, policy)
    if problem:
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
    for address in addresses:
        rule = policy.refusal(address)
        if rule:
            return f"resolves to {rule}"
    return None


class UrlGuard:
    """The check of a webhook URL when a job is submitted: the network rules and the resolver names go through."""

    def __init__(self, policy: NetworkPolicy, resolver: AnyResolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver

    async def check(self, url: str) -> str | None:
        """`check_url` under this guard's rules."""
        return await check_url(url, self.policy, resolver=self.resolver)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver refusing hosts that resolve to an address `policy` refuses, for a `TCPConnector`.

    The connector connects only to addresses this resolver returned, so the check is on the address actually
    used (no window for DNS rebinding). Any refused address among the results refuses the host: `AddressRefused`
    (an OSError; aiohttp raises it as the cause of a `ClientConnectorError`), naming the rule only.
    """

    def __init__(self, policy: NetworkPolicy, inner: AnyResolver | None = None) -> None:
        self.policy = policy
        self._inner = inner

    @property
    def inner(self) -> AnyResolver:
        if self._inner is None:
            self._inner = DefaultResolver()  # needs the running loop: made on first use
        return self._inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily | int = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)  # type: ignore[arg-type]
        if not results:
            raise OSError(f"webhook host {host!r} does not resolve")
        for result in results:
            rule = self.policy.refusal(result["host"])
            if rule:
                raise AddressRefused(f"webhook host {host!r} resolves to {rule}")
        return results

    async def close(self) -> None:
        if isinstance(self._inner, AbstractResolver):
            await self._inner.close()
