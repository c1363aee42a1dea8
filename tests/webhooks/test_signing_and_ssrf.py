"""Webhook signatures, and the SSRF guard on webhook URLs."""

from __future__ import annotations

import socket

import pytest

from gateway.webhooks.signing import sign, verify
from gateway.webhooks.ssrf import GuardedResolver, address_refused, check_url, check_url_syntax

BODY = b'{"id":"evt_1","type":"job.transition"}'


def test_signature_format_and_verification():
    header = sign("s3cret", BODY, timestamp=1_700_000_000)
    t, v1 = header.split(",")
    assert t == "t=1700000000" and v1.startswith("v1=") and len(v1) == 3 + 64
    assert verify("s3cret", BODY, header, now=1_700_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [("other", BODY, 1_700_000_000), ("s3cret", BODY + b" ", 1_700_000_000), ("s3cret", BODY, 1_700_000_301)],
)
def test_tampered_secret_body_or_stale_timestamp_fails(secret, body, now):
    header = sign("s3cret", BODY, timestamp=1_700_000_000)
    assert not verify(secret, body, header, now=now)


@pytest.mark.parametrize("header", ["", "t=abc,v1=00", "v1=00", "t=1700000000"])
def test_malformed_headers_fail(header):
    assert not verify("s3cret", BODY, header, now=1_700_000_000)


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1",
     "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "240.0.0.1", "not-an-ip"],
)
def test_private_and_special_addresses_are_refused(address):
    assert address_refused(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_are_allowed(address):
    assert not address_refused(address)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("ftp://example.com/h", "http(s)"), ("http:///h", "host"), ("https://u:p@example.com/", "credentials"),
     ("https://example.com:0/", "port"), ("https://example.com:99999/", "valid"), ("x" * 3000, "2048")],
)
def test_url_syntax_problems(url, problem):
    assert problem in (check_url_syntax(url) or "")


class FakeResolver:
    def __init__(self, addresses):
        self.addresses = addresses

    async def resolve(self, host, port=0, family=socket.AF_INET):
        return [{"hostname": host, "host": a, "port": port, "family": family, "proto": 0, "flags": 0}
                for a in self.addresses]

    async def close(self):
        return None


async def test_a_name_resolving_to_a_private_address_is_refused():
    assert "private" in await check_url("https://hooks.example/x", allow_private=False,
                                        resolver=FakeResolver(["93.184.216.34", "10.0.0.5"]))
    assert await check_url("https://hooks.example/x", allow_private=False,
                           resolver=FakeResolver(["93.184.216.34"])) is None


async def test_literal_loopback_is_refused_unless_allowed():
    assert "loopback" in await check_url("http://127.0.0.1:9/h", allow_private=False)
    assert await check_url("http://127.0.0.1:9/h", allow_private=True) is None


async def test_guarded_resolver_checks_the_address_connected_to():
    guarded = GuardedResolver(False, inner=FakeResolver(["169.254.169.254"]))
    with pytest.raises(OSError, match="refused address"):
        await guarded.resolve("rebinding.example", 80)
    assert await GuardedResolver(True, inner=FakeResolver(["10.0.0.1"])).resolve("ok.example", 80)
