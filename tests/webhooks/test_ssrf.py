"""The SSRF guard on webhook URLs: the network rules, URL form, resolved names, and the connect-time resolver."""

from __future__ import annotations

import socket
from ipaddress import ip_network

import aiohttp
import pytest
from aiohttp import web

from gateway.testing.dns import FakeResolver
from gateway.webhooks.ssrf import (
    PUBLIC_ONLY,
    RULE_NEVER,
    RULE_SENSITIVE,
    AddressRefused,
    GuardedResolver,
    NetworkPolicy,
    address_refused,
    check_url,
    check_url_static,
    check_url_syntax,
)

LOOPBACK = NetworkPolicy([ip_network("127.0.0.0/8"), ip_network("::1/128")])  # the demo's rules
EVERYTHING = NetworkPolicy([ip_network("0.0.0.0/0"), ip_network("::/0")])

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
    problem = await check_url(url, PUBLIC_ONLY, resolver=FailingResolver())  # a literal needs no lookup
    assert problem and problem.startswith("is ") and ("webhooks.allow_networks" in problem or "no webhook" in problem)
    assert check_url_static(url, PUBLIC_ONLY) == problem


@pytest.mark.parametrize("url", ["https://8.8.8.8/hook", "http://[2606:4700:4700::1111]:8080/h", "https://1.1.1.1"])
async def test_urls_with_public_literal_addresses_are_allowed(url):
    assert await check_url(url, PUBLIC_ONLY, resolver=FailingResolver()) is None


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
        ("http://0177.0.0.1/", "octal"),
        ("http://2852039166/", "decimal"),  # 169.254.169.254
        ("http://0251.0376.0251.0376/", "IPv4"),
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
    problem = await check_url("https://hooks.example.com/x", PUBLIC_ONLY, resolver=resolver)
    assert problem and problem.startswith("resolves to a")
    assert resolver.lookups == ["hooks.example.com"]
    assert not any(a in problem for a in addresses)  # the client is not told internal addresses


async def test_a_name_resolving_only_to_public_addresses_is_allowed():
    resolver = FakeResolver(["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    assert await check_url("https://hooks.example.com/x", PUBLIC_ONLY, resolver=resolver) is None


@pytest.mark.parametrize("resolver", [FailingResolver(), FakeResolver([])])
async def test_a_name_that_does_not_resolve_is_refused(resolver):
    assert await check_url("https://nowhere.example/x", PUBLIC_ONLY, resolver=resolver) == ("host does not resolve")


async def test_names_are_resolved_with_getaddrinfo_by_default():
    assert "loopback" in (await check_url("http://localhost:8080/hook", PUBLIC_ONLY) or "")
    assert await check_url("http://localhost:8080/hook", LOOPBACK) is None


async def test_the_guarded_resolver_refuses_at_connect_time_naming_the_rule_not_the_address():
    guarded = GuardedResolver(PUBLIC_ONLY, inner=FakeResolver(["93.184.216.34", "169.254.169.254"]))
    with pytest.raises(AddressRefused) as caught:
        await guarded.resolve("rebinding.example", 80)
    assert str(caught.value) == f"webhook host 'rebinding.example' resolves to {RULE_SENSITIVE}"
    assert "169.254" not in str(caught.value)
    assert issubclass(AddressRefused, OSError)
    with pytest.raises(OSError, match="does not resolve"):
        await GuardedResolver(PUBLIC_ONLY, inner=FakeResolver([])).resolve("empty.example", 80)
    public = await GuardedResolver(PUBLIC_ONLY, inner=FakeResolver(["93.184.216.34"])).resolve("ok.example", 443)
    assert [r["host"] for r in public] == ["93.184.216.34"]
    assert await GuardedResolver(EVERYTHING, inner=FakeResolver(["10.0.0.1"])).resolve("ok.example", 80)
    with pytest.raises(AddressRefused):  # a broad allowance does not open the metadata address
        await GuardedResolver(EVERYTHING, inner=FakeResolver(["169.254.169.254"])).resolve("ok.example", 80)


# the network rules


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"])
def test_the_demo_rules_allow_loopback(address):
    assert LOOPBACK.refusal(address) is None


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("169.254.169.254", RULE_SENSITIVE),
        ("::ffff:169.254.169.254", RULE_SENSITIVE),
        ("::ffff:a9fe:a9fe", RULE_SENSITIVE),
        ("64:ff9b::a9fe:a9fe", RULE_SENSITIVE),
        ("2002:a9fe:a9fe::1", RULE_SENSITIVE),
        ("fe80::1", RULE_SENSITIVE),
        ("fd00:ec2::254", RULE_SENSITIVE),
        ("0.0.0.0", RULE_NEVER),
        ("::", RULE_NEVER),
        ("::ffff:0.0.0.0", RULE_NEVER),
        ("224.0.0.1", RULE_NEVER),
        ("10.0.0.1", "a private address, which is not in webhooks.allow_networks"),
        ("100.64.0.1", "a shared (CGNAT) address, which is not in webhooks.allow_networks"),
        ("fd12::1", "a private address, which is not in webhooks.allow_networks"),
    ],
)
def test_the_demo_rules_refuse_everything_else_not_public_naming_the_rule(address, rule):
    assert LOOPBACK.refusal(address) == rule


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "0.0.0.0", "::"])
def test_allowing_everything_still_refuses_metadata_link_local_and_unspecified(address):
    assert EVERYTHING.refusal(address) is not None
    assert EVERYTHING.refusal("10.1.2.3") is None and EVERYTHING.refusal("fd12::1") is None


def test_link_local_and_metadata_open_only_when_named_explicitly():
    metadata = NetworkPolicy([ip_network("169.254.169.254/32"), ip_network("fd00:ec2::254/128")])
    assert metadata.refusal("169.254.169.254") is None
    assert metadata.refusal("::ffff:169.254.169.254") is None
    assert metadata.refusal("fd00:ec2::254") is None
    assert metadata.refusal("169.254.0.1") == RULE_SENSITIVE  # only what was named
    assert metadata.refusal("10.0.0.1") is not None
    ula = NetworkPolicy([ip_network("fd00::/8")])
    assert ula.refusal("fd00::1") is None
    assert ula.refusal("fd00:ec2::254") == RULE_SENSITIVE  # inside the allowed range, but not named
    link_local = NetworkPolicy([ip_network("169.254.0.0/16"), ip_network("fe80::/10")])
    assert link_local.refusal("169.254.7.7") is None and link_local.refusal("fe80::1") is None


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
    assert await check_url(url, PUBLIC_ONLY, resolver=FakeResolver(["93.184.216.34"])) is None

    rebound = FakeResolver(["127.0.0.1"])
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(PUBLIC_ONLY, inner=rebound), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get(url)
    assert isinstance(caught.value.__cause__, AddressRefused)
    assert hits == [] and rebound.lookups == ["rebinding.example"]

    connector = aiohttp.TCPConnector(resolver=GuardedResolver(LOOPBACK, inner=FakeResolver(["127.0.0.1"])))
    async with aiohttp.ClientSession(connector=connector) as session, session.get(url) as resp:
        assert resp.status == 200
    assert hits == ["/"]
