"""The SSRF guard on webhook URLs: addresses, URL form, resolved names, and the connect-time resolver."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

from gateway.webhooks.ssrf import (
    AddressRefused,
    GuardedResolver,
    address_refused,
    check_url,
    check_url_static,
    check_url_syntax,
)

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",  # loopback
    "10.1.2.3",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",  # RFC 1918
    "169.254.169.254",
    "169.254.0.1",  # link-local (cloud metadata)
    "0.0.0.0",
    "0.1.2.3",  # unspecified, "this network"
    "100.64.0.1",
    "100.127.255.254",  # CGNAT
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",  # multicast, broadcast
    "240.0.0.1",
    "192.0.2.1",
    "198.18.0.1",  # reserved, documentation, benchmarking
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "fec0::1",
    "2001:db8::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:100.64.0.1",  # IPv4-mapped
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",  # NAT64 of 10.0.0.1, 127.0.0.1
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",  # 6to4 of 127.0.0.1, 169.254.169.254
    "fe80::1%eth0",  # scoped
    "not-an-ip",
    "",
]
PUBLIC_ADDRESSES = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.1",
    "172.32.0.1",
    "11.0.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_private_loopback_link_local_and_special_addresses_are_refused(address):
    assert address_refused(address)


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_public_addresses_are_allowed(address):
    assert not address_refused(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.1/",
        "http://[::1]/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::ffff:a9fe:a9fe]/h",
        "http://100.64.0.1/h",
        "http://0.0.0.0:80/",
        "https://[fd00::1]:8443/h",
        "http://[fe80::1%25eth0]/h",
        "HTTP://127.0.0.1/upper",
    ],
)
async def test_urls_with_refused_literal_addresses_are_refused(url):
    problem = await check_url(url, allow_private=False, resolver=FailingResolver())  # a literal needs no lookup
    assert problem and "private" in problem and "loopback" in problem
    assert check_url_static(url, allow_private=False) == problem


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://[2606:4700:4700::1111]:8080/h", "https://1.1.1.1"])
async def test_urls_with_public_literal_addresses_are_allowed(url):
    assert await check_url(url, allow_private=False, resolver=FailingResolver()) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.com/h", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("example.com/hook", "http or https"),
        ("http:///h", "host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://user@example.com/", "credentials"),
        ("https://@example.com/", "credentials"),
        ("https://example.com:0/", "port"),
        ("https://example.com:/", "port"),
        ("https://example.com:99999/", "valid"),
        ("https://example.com:8o/", "valid"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\r\nX: y", "control"),
        ("https://example.com/" + "x" * 2048, "2048"),
        ("http://127.1/", "IPv4"),
        ("http://2130706433/", "IPv4"),
        ("http://0x7f000001/", "IPv4"),
        ("", "non-empty"),
    ],
)
def test_url_form_problems(url, problem):
    assert problem in (check_url_syntax(url) or "")


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x?a=1", "http://example.com:8080", "https://[2606:4700::1]/", "https://a.b/"]
)
def test_good_url_forms(url):
    assert check_url_syntax(url) is None


class FakeResolver:
    """Resolves every name to fixed addresses (an attacker's DNS), counting lookups."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.lookups: list[str] = []

    async def resolve(self, host, port=0, family=socket.AF_INET):
        self.lookups.append(host)
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for a in self.addresses
        ]

    async def close(self):
        return None


class FailingResolver(FakeResolver):
    def __init__(self) -> None:
        super().__init__([])

    async def resolve(self, host, port=0, family=socket.AF_INET):
        raise OSError(f"no such host {host}")


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["93.184.216.34", "10.0.0.5"],
        ["::1"],
        ["169.254.169.254"],
        ["100.64.1.1"],
        ["::ffff:192.168.0.1"],
        ["2606:4700::1", "fe80::1"],
    ],
)
async def test_a_name_resolving_to_any_refused_address_is_refused(addresses):
    resolver = FakeResolver(addresses)
    problem = await check_url("https://hooks.example.com/x", allow_private=False, resolver=resolver)
    assert problem and "private" in problem
    assert resolver.lookups == ["hooks.example.com"]
    assert not any(a in problem for a in addresses)  # the client is not told internal addresses


async def test_a_name_resolving_only_to_public_addresses_is_allowed():
    resolver = FakeResolver(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    assert await check_url("https://hooks.example.com/x", allow_private=False, resolver=resolver) is None


@pytest.mark.parametrize("resolver", [FailingResolver(), FakeResolver([])])
async def test_a_name_that_does_not_resolve_is_refused(resolver):
    assert await check_url("https://nowhere.example/x", allow_private=False, resolver=resolver) == (
        "host does not resolve"
    )


async def test_names_are_resolved_with_getaddrinfo_by_default():
    assert "private" in (await check_url("http://localhost:8080/hook", allow_private=False) or "")


async def test_allow_private_lets_loopback_and_private_names_through():
    assert await check_url("http://127.0.0.1:9/h", allow_private=True) is None
    assert await check_url("http://[::1]:9/h", allow_private=True) is None
    resolver = FakeResolver(["10.0.0.1"])
    assert await check_url("http://internal.example/h", allow_private=True, resolver=resolver) is None
    assert resolver.lookups == []  # nothing to check: no lookup
    assert "http or https" in (await check_url("ftp://127.0.0.1/", allow_private=True) or "")  # form still checked


async def test_the_guarded_resolver_refuses_at_connect_time():
    guarded = GuardedResolver(False, inner=FakeResolver(["93.184.216.34", "169.254.169.254"]))
    with pytest.raises(AddressRefused, match=r"'rebinding.example' resolves to 169.254.169.254 \(link-local\)"):
        await guarded.resolve("rebinding.example", 80)
    assert issubclass(AddressRefused, OSError)
    with pytest.raises(OSError, match="does not resolve"):
        await GuardedResolver(False, inner=FakeResolver([])).resolve("empty.example", 80)
    public = await GuardedResolver(False, inner=FakeResolver(["93.184.216.34"])).resolve("ok.example", 443)
    assert [r["host"] for r in public] == ["93.184.216.34"]
    assert await GuardedResolver(True, inner=FakeResolver(["10.0.0.1"])).resolve("ok.example", 80)


async def test_a_session_with_the_guarded_resolver_never_connects_to_a_rebound_name(aiohttp_server):
    """The name passed the first check (public), then re-points to loopback: the connection is refused."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    url = f"http://rebinding.example:{server.port}/"
    assert await check_url(url, allow_private=False, resolver=FakeResolver(["93.184.216.34"])) is None

    rebound = FakeResolver(["127.0.0.1"])
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(False, inner=rebound), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(url)
    assert isinstance(caught.value.__cause__, AddressRefused)
    assert hits == [] and rebound.lookups == ["rebinding.example"]

    connector = aiohttp.TCPConnector(resolver=GuardedResolver(True, inner=FakeResolver(["127.0.0.1"])))
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as resp:
        assert resp.status == 200
    assert hits == ["/"]
