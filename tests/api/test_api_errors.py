"""Keys, tenants, bad input and vendor faults: each gets its problem code, never a 500, never a secret."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.plugins import get_providers
from gateway.server.keys import GATEWAY
from gateway.server.run import DEMO_WEBHOOK_SECRET
from support.cases import load_case
from support.demo import KEY_B

V1_ROUTES = [
    ("GET", "/v1/providers"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("POST", "/v1/jobs/attach"),
    ("GET", "/v1/jobs/job_000000000000000000000000"),
    ("GET", "/v1/jobs/job_000000000000000000000000/events"),
    ("GET", "/v1/jobs/job_000000000000000000000000/transitions"),
    ("GET", "/v1/jobs/job_000000000000000000000000/result"),
    ("GET", "/v1/jobs/job_000000000000000000000000/artifact"),
    ("POST", "/v1/jobs/job_000000000000000000000000/cancel"),
]


@pytest.mark.parametrize(("method", "path"), V1_ROUTES)
@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic ZGVtbzpkZW1v", "Bearer ", "demo-key"])
async def test_every_v1_route_needs_a_known_bearer_key(demo, method, path, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    status, body, resp_headers = await demo.call(method, path, key=None, headers=headers)
    assert status == 401 and body["code"] == "unauthorized"
    assert resp_headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
async def test_open_routes_need_no_key(demo, path):
    status, _, _ = await demo.call("GET", path, key=None)
    assert status == 200


async def test_tenant_b_cannot_see_tenant_a_jobs(demo):
    job = await demo.submit("camb", load_case("camb").valid_input)
    for method, suffix in [
        ("GET", ""),
        ("GET", "/result"),
        ("GET", "/artifact"),
        ("GET", "/transitions"),
        ("GET", "/events"),
        ("POST", "/cancel"),
    ]:
        status, body, _ = await demo.call(method, f"/v1/jobs/{job['id']}{suffix}", key=KEY_B)
        assert status == 404 and body["code"] == "not_found", suffix
    status, unknown, _ = await demo.call("GET", "/v1/jobs/job_ffffffffffffffffffffffff", key=KEY_B)
    assert status == 404 and unknown["detail"] == body["detail"]  # indistinguishable from an unknown id
    status, page, _ = await demo.call("GET", "/v1/jobs", key=KEY_B)
    assert job["id"] not in [j["id"] for j in page["data"]]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b"{not json", ["body"]),
        (b"", ["body"]),
        (b"[1, 2]", ["body"]),
        (b'"text"', ["body"]),
        (b"\xff\xfe\x00", ["body"]),
        (b'{"provider": "camb"}', ["body", "input"]),
        (b'{"provider": 5, "input": {}}', ["body", "provider"]),
        (b'{"provider": "camb", "input": []}', ["body", "input"]),
        (b'{"provider": "camb", "input": {}, "extra": 1}', ["body", "extra"]),
        (b'{"provider": "camb", "route": "text", "input": {}}', ["body"]),
        (b'{"provider": "nope", "input": {}}', ["body", "provider"]),
        (b'{"route": "nope", "input": {}}', ["body", "route"]),
        (b'{"provider": "camb", "input": {}, "metadata": "x"}', ["body", "metadata"]),
        (b'{"provider": "camb", "input": {}, "webhook_url": "ftp://x"}', ["body", "webhook_url"]),
        (b'{"provider": "camb", "input": {"kind": "text"}}', ["body", "input", "source_language"]),
        (b'{"provider": "doc_translator", "input": {"kind": "document", "content_base64": "%%%"}}', ["body", "input"]),
    ],
)
async def test_bad_submit_bodies_are_validation_errors(demo, raw, loc):
    status, body, _ = await demo.call("POST", "/v1/jobs", data=raw, headers={"Content-Type": "application/json"})
    assert status == 422, body
    assert body["code"] == "validation_error" and body["errors"]
    assert all(set(e) >= {"loc", "msg"} for e in body["errors"])
    assert body["errors"][0]["loc"][: len(loc)] == loc, body["errors"]


async def test_huge_body_is_413(demo):
    huge = b'{"provider": "camb", "input": {"texts": ["' + b"x" * (11 * 1024 * 1024) + b'"]}}'
    status, body, _ = await demo.call("POST", "/v1/jobs", data=huge, headers={"Content-Type": "application/json"})
    assert status == 413 and body["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "job_id",
    ["..%2F..%2Fetc%2Fpasswd", "job_..", "%00", "job_" + "a" * 500, "' OR 1=1 --", "job_ABCDEF", "%2e%2e"],
)
async def test_hostile_job_ids_are_404(demo, job_id):
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job_id}")
    assert status == 404 and body["code"] == "not_found"


@pytest.mark.parametrize(
    "ref",
    [{"task_id": "../../admin"}, {"task_id": "a/b"}, {"task_id": ""}, {"task_id": 5.5}, {}, {"task_id": "x" * 999}],
)
async def test_hostile_vendor_refs_never_reach_the_vendor(demo, ref):
    before = await demo.sim(get_providers()["camb"].sim_prefix, "/__sim__/stats")
    status, body, _ = await demo.call("POST", "/v1/jobs/attach", json={"provider": "camb", "vendor_ref": ref})
    assert status == 422 and body["code"] == "validation_error"
    after = await demo.sim(get_providers()["camb"].sim_prefix, "/__sim__/stats")
    assert after == before


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"fault": "http_500"}, 502, "upstream_error"),
        ({"fault": "http_503"}, 502, "upstream_error"),
        ({"fault": "http_429", "retry_after_s": 9}, 503, "upstream_rate_limited"),
        ({"fault": "malformed_json"}, 502, "upstream_error"),
        ({"fault": "reset"}, 502, "upstream_error"),  # a broken connection is not a timeout
    ],
)
async def test_vendor_faults_on_submit_surface_as_problem_codes(demo, fault, status, code):
    await demo.sim(get_providers()["segment_qa"].sim_prefix, "/__sim__/faults", {**fault, "count": 1})
    got, body, headers = await demo.call(
        "POST", "/v1/jobs", json={"provider": "segment_qa", "input": load_case("segment_qa").valid_input}
    )
    assert (got, body["code"]) == (status, code), body
    if code == "upstream_rate_limited":
        assert headers["Retry-After"] == "9"


async def test_vendor_auth_failure_is_502_and_leaks_no_key(new_demo, monkeypatch):
    monkeypatch.setenv("GATEWAY_DEMO_VENDOR_KEY", "invalid")
    d = await new_demo()
    payload = {"provider": "camb", "input": load_case("camb").valid_input}
    status, body, _ = await d.call("POST", "/v1/jobs", json=payload)
    assert status == 502 and body["code"] == "upstream_auth_failed"


async def test_vendor_timeout_is_504(demo):
    await demo.sim(get_providers()["camb"].sim_prefix, "/__sim__/faults", {"fault": "delay", "delay_s": 3, "count": 1})
    conn = demo.app[GATEWAY].connections["camb"]
    conn.timeout = aiohttp.ClientTimeout(total=0.5)
    payload = {"provider": "camb", "input": load_case("camb").valid_input}
    status, body, _ = await demo.call("POST", "/v1/jobs", json=payload)
    assert status == 504 and body["code"] == "upstream_timeout"


async def test_vendor_validation_error_is_422_with_vendor_detail(demo):
    case = load_case("camb")
    status, body, _ = await demo.call("POST", "/v1/jobs", json={"provider": "camb", "input": case.invalid_input})
    assert status == 422 and body["code"] == "validation_error" and body["errors"]


async def test_wrong_method_and_unknown_route(demo):
    status, body, _ = await demo.call("DELETE", "/v1/jobs")
    assert status == 405 and body["code"] == "method_not_allowed"
    status, body, _ = await demo.call("GET", "/v1/nothing-here")
    assert status == 404 and body["code"] == "not_found"
    for path in ("/v1/deliveries/%0A%12x/retry", "/v1/jobs/a%0Ab/cancel", "/%0A"):  # newlines in a path: no route
        status, body, headers = await demo.call("POST", path)
        assert status in (404, 405) and headers["Content-Type"].startswith("application/problem+json"), (path, body)


async def test_long_poll_parameters_are_validated(demo):
    job = await demo.submit("camb", load_case("camb").valid_input)
    for bad in ("wait=61", "wait=-1", "wait=abc", "wait=1&version=x"):
        status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?{bad}")
        assert status == 422 and body["code"] == "validation_error", bad


async def test_metrics_count_requests_upstream_and_states(demo):
    await demo.submit("camb", load_case("camb").valid_input)
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    text = text.decode()
    assert 'gateway_http_requests_total{method="POST",route="/v1/jobs",status="201"} 1' in text
    assert 'gateway_upstream_requests_total{operation="submit",outcome="ok",provider="camb"} 1' in text
    assert "gateway_upstream_latency_seconds_bucket" in text
    assert 'gateway_jobs{state="queued"}' in text or 'gateway_jobs{state="running"}' in text


async def test_unknown_vendor_status_is_counted(demo):
    case = load_case("camb")
    job = await demo.submit("camb", case.valid_input)
    await demo.sim(
        get_providers()["camb"].sim_prefix,
        f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state",
        {"status": "REBALANCING"},
    )
    job = await demo.wait_for(job["id"], lambda j: j["state"] == "unknown")
    assert job["vendor_status"] == "REBALANCING" and not job["terminal"]
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    assert 'gateway_unknown_vendor_status_total{provider="camb",vendor_status="REBALANCING"}' in text.decode()


async def test_no_secret_in_any_response(demo):
    import os

    secrets = [os.environ["GATEWAY_DEMO_VENDOR_KEY"], DEMO_WEBHOOK_SECRET]
    job = await demo.submit("camb", load_case("camb").valid_input)
    for path in ("/v1/providers", "/v1/jobs", f"/v1/jobs/{job['id']}", "/openapi.json"):
        _, body, _ = await demo.call("GET", path)
        assert not any(s in str(body) for s in secrets), path
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    assert not any(s in text.decode() for s in secrets)


async def test_access_log_is_structured_with_request_id_and_no_secret(demo, caplog):
    import logging
    import os

    caplog.set_level(logging.INFO, logger="gateway.access")
    status, _, headers = await demo.call("GET", "/v1/jobs", headers={"X-Request-Id": "req-123"})
    assert status == 200 and headers["X-Request-Id"] == "req-123"
    await demo.call("GET", "/v1/jobs", key="wrong-secret-key")
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert any(line.startswith("request_id=req-123 method=GET route=/v1/jobs status=200 ") for line in lines)
    assert any("status=401" in line for line in lines)
    text = "\n".join(lines)
    for secret in ("demo-key", "wrong-secret-key", os.environ["GATEWAY_DEMO_VENDOR_KEY"]):
        assert secret not in text
