"""Headers and parameters (issue classes 6 and 7): every header the gateway parses is parsed strictly (a bad
value is a 422 naming it, never a 500), and the OpenAPI document states exactly what the server enforces."""

from __future__ import annotations

import logging

import pytest
from jsonschema import Draft202012Validator

from gateway.server import auth
from gateway.server.keys import TENANT_CACHE
from support.cases import load_case
from support.demo import KEY_A, KEY_B

JOB = "job_" + "0" * 24

# -- class 6: headers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["\u00b2", "\u0661", "\U0001d7d9", "", "-1", "1.5", "0x1", "1e3", "9" * 30, "+1", "1,2"],
    ids=["superscript_two", "arabic_one", "math_one", "empty", "negative", "fraction", "hex", "exponent", "huge",
         "plus", "list"],
)  # fmt: skip
async def test_a_bad_last_event_id_is_422_never_500(demo, value):
    job = await demo.submit("camb", load_case("camb").valid_input)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": value})
    assert status == 422 and body["code"] == "validation_error", body
    assert body["errors"][0]["loc"] == ["header", "Last-Event-ID"]
    await demo.listing()
    assert (await demo.finish(job))["terminal"]
    status, stream, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "1"})
    assert status == 200 and b"event: job" in stream  # a good one still resumes the (ended) stream


@pytest.mark.parametrize("value", ["é", "a b", "x" * 201, "\t", "ключ"])
async def test_a_bad_idempotency_key_is_422_before_any_vendor_call(demo, value):
    before = await demo.vendor_requests()
    payload = {"provider": "camb", "input": load_case("camb").valid_input}
    status, body, _ = await demo.call("POST", "/v1/jobs", json=payload, headers={"Idempotency-Key": value})
    assert status == 422 and body["code"] == "validation_error"
    assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await demo.vendor_requests() == before
    assert await demo.listing() == []


@pytest.mark.parametrize(
    ("value", "kept"),
    [("req-123", True), ("a.b_c-9", True), ("x" * 64, True), ("x" * 65, False), ("²", False), ("req 1", False),
     ("é", False), ("", False), ("a/b", False)],
)  # fmt: skip
async def test_only_a_well_formed_request_id_is_used(demo, caplog, value, kept):
    status, _, headers = await demo.call("GET", "/v1/jobs", headers={"X-Request-Id": value})
    assert status == 200
    if kept:
        assert headers["X-Request-Id"] == value
    else:
        assert headers["X-Request-Id"] != value and len(headers["X-Request-Id"]) == 16
        assert headers["X-Request-Id"].isascii()


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (f"Bearer {KEY_A}", 200),
        (f"bearer {KEY_A}", 200),
        (f"BEARER   {KEY_A}", 200),
        (f"Bearer {KEY_A} extra", 401),
        (f"Bearer\t{KEY_A}", 401),
        (f"Bearer {KEY_A},", 401),
        ("Bearer dëmo-key", 401),
        (f"Token {KEY_A}", 401),
        ("Bearer", 401),
        (KEY_A, 401),
    ],
)
async def test_the_authorization_header_is_parsed_strictly(demo, value, status):
    got, body, headers = await demo.call("GET", "/v1/jobs", key=None, headers={"Authorization": value})
    assert got == status, body
    if status == 401:
        assert body["code"] == "unauthorized" and headers["WWW-Authenticate"].startswith("Bearer")


async def test_remembered_authorization_values_name_their_own_tenant_and_stay_few(demo, caplog, monkeypatch):
    """Authorization values that named a tenant are remembered (a dict lookup instead of a digest comparison):
    each keeps naming its own tenant, a wrong key is still refused, and at most TENANT_CACHE_SIZE are kept."""
    monkeypatch.setattr(auth, "TENANT_CACHE_SIZE", 2)
    remembered = demo.client.server.app[TENANT_CACHE]
    caplog.set_level(logging.INFO, logger="gateway.access")
    values = [f"Bearer {KEY_A}", f"Bearer {KEY_B}", f"Bearer {KEY_A}", f"bearer {KEY_B}", f"Bearer  {KEY_A}"]
    for value in [*values, f"Bearer {KEY_B}"]:
        got, body, _ = await demo.call("GET", "/v1/jobs", key=None, headers={"Authorization": value})
        assert got == 200, body
        assert 1 <= len(remembered) <= 2
    tenants = [r.getMessage().rsplit("tenant=", 1)[1] for r in caplog.records if r.name == "gateway.access"]
    assert tenants == ["demo", "demo-b", "demo", "demo-b", "demo", "demo-b"]
    got, body, _ = await demo.call("GET", "/v1/jobs", key=None, headers={"Authorization": f"Bearer {KEY_A}x"})
    assert got == 401 and body["code"] == "unauthorized"
    assert f"Bearer {KEY_A}x" not in remembered


# -- class 7: the document states what the server enforces -------------------------------------------------------


async def test_submit_needs_exactly_one_of_provider_or_route_in_the_schema_and_the_server(demo):
    _, doc, _ = await demo.call("GET", "/openapi.json", key=None)
    validator = Draft202012Validator(doc["components"]["schemas"]["SubmitRequest"])
    camb = load_case("camb").valid_input
    texts = load_case("segment_qa").valid_input
    bodies = [
        ({"provider": "camb", "input": camb}, True),
        ({"route": "text", "input": texts}, True),
        ({"provider": "camb", "route": "text", "input": camb}, False),
        ({"input": camb}, False),
        ({"provider": None, "route": "text", "input": texts}, False),
        ({"provider": "camb", "route": None, "input": camb}, False),
        ({"provider": None, "input": camb}, False),
        ({"provider": "", "input": camb}, False),
    ]
    for body, valid in bodies:
        assert validator.is_valid(body) is valid, body
        status, answer, _ = await demo.call("POST", "/v1/jobs", json=body)
        assert (status == 201) is valid, (body, answer)
        if not valid:
            assert status == 422 and answer["code"] == "validation_error"
    for job in await demo.listing():
        await demo.finish(job)


@pytest.mark.parametrize(
    "query",
    ["cursor=", "limit=", "state=", "provider=", "provider=%00", "cursor=%0A", "provider=a%7Fb"],
)
async def test_empty_or_unprintable_list_parameters_are_refused_as_the_schema_says(demo, query):
    status, body, _ = await demo.call("GET", f"/v1/jobs?{query}")
    assert status == 422 and body["code"] == "validation_error", body
    name = query.split("=")[0]
    assert body["errors"][0]["loc"] == ["query", name]
    _, doc, _ = await demo.call("GET", "/openapi.json", key=None)
    [param] = [p for p in doc["paths"]["/v1/jobs"]["get"]["parameters"] if p["name"] == name]
    schema = param["schema"]
    assert schema.get("minLength") == 1 or schema.get("type") == "integer" or "enum" in schema


async def test_undecodable_query_bytes_arrive_as_replacement_characters(demo):
    """Bytes that are not UTF-8 reach the gateway as U+FFFD (never a lone surrogate): a filter matching nothing."""
    status, body, _ = await demo.call("GET", "/v1/jobs?provider=%ED%A0%80")
    assert status == 200 and body == {"data": [], "next_cursor": None}


@pytest.mark.parametrize("query", ["version=", "wait=", "version=1", "wait=1&version=", "version=-1"])
async def test_long_poll_parameters_are_checked_with_or_without_wait(demo, query):
    job = await demo.submit("camb", load_case("camb").valid_input)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?{query}")
    if query == "version=1":
        assert status == 200  # a version alone is allowed (and means nothing without wait)
    else:
        assert status == 422 and body["code"] == "validation_error", body
    await demo.finish(job)


async def test_attach_is_not_a_job_id(demo):
    status, body, headers = await demo.call("OPTIONS", "/v1/jobs/attach")
    assert status == 405 and body["code"] == "method_not_allowed"
    assert headers["Allow"] == "POST"
    status, body, headers = await demo.call("GET", "/v1/jobs/attach")
    assert status == 405 and headers["Allow"] == "POST"
    for path in (f"/v1/jobs/{JOB}", f"/v1/jobs/{JOB}/result"):
        status, _, headers = await demo.call("OPTIONS", path)
        assert status == 405 and "GET" in headers["Allow"]
    _, doc, _ = await demo.call("GET", "/openapi.json", key=None)
    [job_id] = [p for p in doc["paths"]["/v1/jobs/{job_id}"]["get"]["parameters"] if p["name"] == "job_id"]
    assert job_id["schema"]["pattern"] == "^job_[0-9a-f]{24}$"
