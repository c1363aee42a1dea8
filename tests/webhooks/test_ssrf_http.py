"""The SSRF rules through HTTP in the demo's configuration (loopback allowed, nothing else that is not public):
refusals at submit name the rule, never the address a name resolved to; delivery re-checks at connect time."""

from __future__ import annotations

import pytest

from gateway.server.run import DEMO_WEBHOOK_NETWORKS, demo_config
from gateway.webhooks.ssrf import RULE_NEVER, RULE_SENSITIVE
from support.cases import load_case

#: names the test's DNS resolves (an attacker's records)
RECORDS = {
    "metadata.evil.test": ["169.254.169.254"],
    "mapped.evil.test": ["::ffff:169.254.169.254"],
    "zero.evil.test": ["0.0.0.0"],
    "aws6.evil.test": ["fd00:ec2::254"],
    "mixed.evil.test": ["127.0.0.1", "169.254.169.254"],
    "private.evil.test": ["10.0.0.7"],
}


def test_the_demo_allows_loopback_only():
    assert demo_config("http://127.0.0.1:1")["webhooks"]["allow_networks"] == list(DEMO_WEBHOOK_NETWORKS)
    assert list(DEMO_WEBHOOK_NETWORKS) == ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://169.254.169.254/latest/meta-data/", RULE_SENSITIVE),
        ("http://[::ffff:169.254.169.254]/latest/meta-data/", RULE_SENSITIVE),
        ("http://[::ffff:a9fe:a9fe]/latest/", RULE_SENSITIVE),
        ("http://[fd00:ec2::254]/latest/", RULE_SENSITIVE),
        ("http://[fe80::1]/", RULE_SENSITIVE),
        ("http://0.0.0.0:8080/hook", RULE_NEVER),
        ("http://[::]:8080/hook", RULE_NEVER),
        ("http://10.0.0.7/hook", "a private address, which is not in webhooks.allow_networks"),
        ("http://2852039166/latest/", "four decimal numbers"),  # 169.254.169.254, decimal
        ("http://0251.0376.0251.0376/latest/", "four decimal numbers"),  # octal
        ("http://0xa9.0xfe.0xa9.0xfe/latest/", "four decimal numbers"),  # hex
        ("http://017700000001/hook", "four decimal numbers"),  # 127.0.0.1, octal
        ("http://0/hook", "four decimal numbers"),  # 0.0.0.0
        ("http://metadata.evil.test/latest/", RULE_SENSITIVE),
        ("http://mapped.evil.test/latest/", RULE_SENSITIVE),
        ("http://aws6.evil.test/latest/", RULE_SENSITIVE),
        ("http://zero.evil.test:8080/hook", RULE_NEVER),
        ("http://mixed.evil.test/hook", RULE_SENSITIVE),  # one bad address is enough
        ("http://private.evil.test/hook", "a private address, which is not in webhooks.allow_networks"),
        ("http://unknown.evil.test/hook", "host does not resolve"),
    ],
)
async def test_the_demo_refuses_internal_webhook_urls_at_submit_naming_the_rule(hooks_with, url, rule):
    hooks = await hooks_with()
    hooks.dns.answers.update(RECORDS)
    status, body, _ = await hooks.demo.call(
        "POST", "/v1/jobs", json={"provider": "camb", "input": load_case("camb").valid_input, "webhook_url": url}
    )
    assert status == 422, body
    [error] = [e for e in body["errors"] if e["loc"] == ["body", "webhook_url"]]
    assert rule in error["msg"]
    for address in ("169.254", "a9fe", "fd00:ec2", "10.0.0.7", "0.0.0.0"):  # resolved addresses are never told
        if address not in url:
            assert address not in error["msg"], error
    status, listed, _ = await hooks.demo.call("GET", "/v1/jobs")
    assert listed["data"] == []  # refused before any vendor was called: no job


async def test_the_demo_accepts_loopback_receivers(hooks_with, receiver_at):
    hooks = await hooks_with()
    receiver = await receiver_at()
    port = receiver.url.split(":")[2].split("/")[0]
    for url in (receiver.url, f"http://localhost:{port}/hook"):
        job = await hooks.submit(url)
        assert (await hooks.attempts(job["id"], 1))["state"] == "delivered"
    assert len(receiver.calls) >= 2


async def test_a_name_rebound_to_the_metadata_address_is_refused_at_connect_time(hooks_with, receiver_at):
    hooks = await hooks_with()
    receiver = await receiver_at()
    port = receiver.url.split(":")[2].split("/")[0]
    # the first answer passes the check at submit, every later one points at the metadata service
    hooks.dns.answers["rebind.evil.test"] = [["127.0.0.1"], ["169.254.169.254"]]
    job = await hooks.submit(f"http://rebind.evil.test:{port}/hook")
    entry = await hooks.attempts(job["id"], 1)
    [attempt] = entry["attempts"]
    assert attempt["status"] is None and attempt["error"] == "refused"
    assert attempt["message"] == f"webhook URL refused: webhook host 'rebind.evil.test' resolves to {RULE_SENSITIVE}"
    assert entry["state"] == "pending"  # retried on schedule: the name may be fixed
    log = await hooks.log(job["id"])
    assert "169.254" not in str(log)
    assert receiver.calls == []
    assert hooks.dns.lookups.count("rebind.evil.test") >= 2  # checked at submit, and again to connect
    _, metrics, _ = await hooks.demo.call("GET", "/metrics", key=None)
    assert 'gateway_webhook_deliveries_total{outcome="refused"} 1' in metrics.decode()
