"""Webhook URLs must not reach the gateway's own network: loopback, private, link-local and similar
addresses are refused unless the operator allows them (`[webhooks] allow_private = true`)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def address_refused(address: str) -> bool:
    """True for addresses a webhook may not reach unless private targets are allowed."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_multicast
        or ip.is_reserved or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT)
    )


def check_url_syntax(url: str) -> str | None:
    """A problem with the URL's form, or None."""
    if len(url) > 2048:
        return "must be at most 2048 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must be an http(s) URL"
    if not parts.hostname:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if port == 0:
        return "has an invalid port"
    return None


async def check_url(url: str, *, allow_private: bool, resolver: AbstractResolver | None = None) -> str | None:
    """A problem with the URL (form, or a host resolving to a refused address), or None."""
    problem = check_url_syntax(url)
    if problem or allow_private:
        return problem
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            if resolver is not None:
                addresses = [r["host"] for r in await resolver.resolve(host, 0, socket.AF_UNSPEC)]
            else:
                infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
                addresses = [info[4][0] for info in infos]
        except OSError:
            return "host does not resolve"
    if not addresses or any(address_refused(a) for a in addresses):
        return "resolves to a loopback, private or link-local address, which this gateway does not call"
    return None


class GuardedResolver(AbstractResolver):
    """Checks the addresses actually connected to, so a name cannot be re-pointed after the check."""

    def __init__(self, allow_private: bool, inner: AbstractResolver | None = None) -> None:
        self.allow_private = allow_private
        self.inner = inner or DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not self.allow_private and any(address_refused(r["host"]) for r in results):
            raise OSError(f"webhook host {host!r} resolves to a refused address")
        return results

    async def close(self) -> None:
        await self.inner.close()
