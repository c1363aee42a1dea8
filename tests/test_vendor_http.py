"""VendorConnection (gateway/vendor_http.py) against a vendor that answers whatever each test scripts: every HTTP
status class becomes its typed error, Retry-After is read, secrets never reach a message, bodies are capped, and
transport failures are typed too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway import errors
from gateway.vendor_http import VendorConnection, parse_retry_after, path_segment
from support.ports import refused_port
from support.scripted import ScriptedVendor

SECRET = "s3cret-vendor-key-91b2"
PATH = "/v1/things/t1"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def connect(session: aiohttp.ClientSession, url: str, **kw: Any) -> VendorConnection:
    return VendorConnection("acme", session, url, headers={"X-Key": SECRET}, secrets=[SECRET], **kw)


@pytest.fixture
def conn(session: aiohttp.ClientSession, scripted: ScriptedVendor) -> VendorConnection:
    return connect(session, scripted.url, timeout_s=5.0)


async def error_for(conn: VendorConnection, scripted: ScriptedVendor, status: int, body: Any = None, **answer: Any):
    """The error a GET of PATH raises when the vendor answers so; it names the provider and the status."""
    scripted.on("GET", PATH, status, body, **answer)
    with pytest.raises(errors.VendorError) as info:
        await conn.request_json("GET", PATH)
    assert (info.value.provider, info.value.status) == ("acme", status)
    return info.value


# -- answers that work -------------------------------------------------------------------------------------------------
async def test_2xx_json_is_returned_with_its_status_and_the_auth_header_is_sent(
    conn: VendorConnection, scripted: ScriptedVendor
) -> None:
    scripted.on("POST", "/v1/things", 201, {"id": "t1"})
    assert await conn.request_json("POST", "/v1/things", json_body={"a": 1}) == (201, {"id": "t1"})
    (call,) = scripted.calls
    assert call.headers["X-Key"] == SECRET and call.body == b'{"a": 1}'


async def test_per_request_headers_add_to_the_connection_headers(conn: VendorConnection, scripted: ScriptedVendor):
    scripted.on("GET", PATH, 200, {})
    await conn.request_json("GET", PATH, headers={"X-Extra": "1"})
    await conn.request_json("GET", PATH)
    first, second = scripted.calls
    assert (first.headers["X-Key"], first.headers["X-Extra"]) == (SECRET, "1")
    assert "X-Extra" not in second.headers and conn.headers == {"X-Key": SECRET}


async def test_allowed_statuses_are_answers_not_errors(conn: VendorConnection, scripted: ScriptedVendor) -> None:
    scripted.on("GET", PATH, 409, {"detail": "duplicate", "job_id": "j7"})
    assert await conn.request_json("GET", PATH, allow=(409,)) == (409, {"detail": "duplicate", "job_id": "j7"})


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"status": "proc', b"\xff\xfe"])
async def test_a_2xx_body_that_is_not_json_is_malformed(
    conn: VendorConnection, scripted: ScriptedVendor, raw: bytes
) -> None:
    scripted.on("GET", PATH, 200, raw=raw)
    with pytest.raises(errors.VendorMalformed):
        await conn.request_json("GET", PATH)


# -- each status class, its typed error --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "error", "problem_code", "http_status", "failover"),
    [
        (401, errors.VendorAuthError, "upstream_auth_failed", 502, True),
        (403, errors.VendorAuthError, "upstream_auth_failed", 502, True),
        (402, errors.VendorQuotaExceeded, "upstream_quota_exceeded", 402, True),
        (404, errors.VendorNotFound, "not_found", 404, False),
        (409, errors.VendorConflict, "upstream_error", 502, False),
        (400, errors.VendorValidationError, "validation_error", 422, False),
        (413, errors.VendorValidationError, "validation_error", 422, False),
        (415, errors.VendorValidationError, "validation_error", 422, False),
        (422, errors.VendorValidationError, "validation_error", 422, False),
        (429, errors.VendorRateLimited, "upstream_rate_limited", 503, True),
        (500, errors.VendorServerError, "upstream_error", 502, True),
        (502, errors.VendorServerError, "upstream_error", 502, True),
        (503, errors.VendorServerError, "upstream_error", 502, True),
        (504, errors.VendorServerError, "upstream_error", 502, True),
        (418, errors.VendorError, "upstream_error", 502, True),
        (451, errors.VendorError, "upstream_error", 502, True),
    ],
)
async def test_status_class_becomes_its_typed_error(
    conn: VendorConnection,
    scripted: ScriptedVendor,
    status: int,
    error: type[errors.VendorError],
    problem_code: str,
    http_status: int,
    failover: bool,
) -> None:
    exc = await error_for(conn, scripted, status, {"detail": "nope"})
    assert type(exc) is error
    assert (exc.problem_code, exc.http_status, exc.failover) == (problem_code, http_status, failover)


async def test_not_found_and_conflict_keep_the_vendor_detail(conn: VendorConnection, scripted: ScriptedVendor) -> None:
    assert (await error_for(conn, scripted, 404, {"detail": "Job not found"})).message == "Job not found"
    assert (await error_for(conn, scripted, 404, raw=b"")).message == "vendor does not know this resource"
    conflict = await error_for(conn, scripted, 409, {"detail": "not ready", "status": "queued"})
    assert isinstance(conflict, errors.VendorConflict)
    assert conflict.message == "not ready" and conflict.body == {"detail": "not ready", "status": "queued"}


async def test_error_statuses_raise_before_a_stream_is_opened(conn: VendorConnection, scripted: ScriptedVendor):
    scripted.on("GET", "/file", 503, {"detail": "busy"}, headers={"Retry-After": "4"})
    with pytest.raises(errors.VendorServerError) as info:
        async with conn.stream("GET", "/file"):
            pytest.fail("must not open")
    assert info.value.retry_after == 4.0
    scripted.on("GET", "/file", 200, raw=b"%PDF-1.4 bytes")
    async with conn.stream("GET", "/file") as resp:
        assert await resp.read() == b"%PDF-1.4 bytes"


# -- validation errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("Only PDF files are supported", [{"loc": ["input"], "msg": "Only PDF files are supported"}]),
        (
            [{"loc": ["body", "texts", 1], "msg": "not a string"}, {"loc": ["query", "lang"], "msg": "missing"}],
            [
                {"loc": ["input", "body", "texts", 1], "msg": "not a string"},
                {"loc": ["input", "query", "lang"], "msg": "missing"},
            ],
        ),
        (  # loc parts that are not str/int (bools too) are dropped; no loc, no msg, junk items
            [{"loc": ["a", True, None, 2.5, 3]}, {"msg": "no loc"}, "junk", None, {"loc": "a.b", "msg": 5}],
            [
                {"loc": ["input", "a", 3], "msg": "invalid"},
                {"loc": ["input"], "msg": "no loc"},
                {"loc": ["input"], "msg": "5"},
            ],
        ),
        # no usable detail: the generic message, never the raw JSON body
        ([], [{"loc": ["input"], "msg": "vendor rejected the request (HTTP 422)"}]),
        ({"field": "bad"}, [{"loc": ["input"], "msg": "vendor rejected the request (HTTP 422)"}]),
    ],
    ids=["string", "fastapi-list", "odd-items", "empty-list", "object"],
)
async def test_validation_errors_from_the_vendor_detail(
    conn: VendorConnection, scripted: ScriptedVendor, detail: Any, expected: list[dict[str, Any]]
) -> None:
    exc = await error_for(conn, scripted, 422, {"detail": detail})
    assert isinstance(exc, errors.VendorValidationError)
    assert exc.errors == expected


async def test_validation_errors_are_capped_at_fifty(conn: VendorConnection, scripted: ScriptedVendor) -> None:
    detail = [{"loc": ["body", i], "msg": f"bad {i}"} for i in range(80)]
    exc = await error_for(conn, scripted, 400, {"detail": detail})
    assert isinstance(exc, errors.VendorValidationError)
    assert len(exc.errors) == 50 and exc.errors[-1] == {"loc": ["input", "body", 49], "msg": "bad 49"}


# -- Retry-After -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("999999", 3600.0),  # capped at an hour
        ("-1", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # the HTTP-date form is not read
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(("header", "seconds"), [({"Retry-After": "2"}, 2.0), ({"Retry-After": "x"}, None), ({}, None)])
async def test_retry_after_is_read_from_429_and_5xx(
    conn: VendorConnection, scripted: ScriptedVendor, status: int, header: dict[str, str], seconds: float | None
) -> None:
    exc = await error_for(conn, scripted, status, {"detail": "later"}, headers=header)
    assert isinstance(exc, errors.VendorRateLimited | errors.VendorServerError)
    assert exc.retry_after == seconds


# -- secrets -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "answer", "shown"),
    [
        (404, {"body": {"detail": f"no job for key {SECRET}"}}, "no job for key ***"),
        (409, {"body": {"detail": f"{SECRET} conflicts"}}, "*** conflicts"),
        (422, {"body": {"detail": f"key {SECRET} is not allowed"}}, "key *** is not allowed"),
        (422, {"body": {"detail": [{"loc": ["body"], "msg": f"bad key {SECRET}"}]}}, "body: bad key ***"),
        (404, {"raw": f"plain text with {SECRET} in it".encode()}, "plain text with *** in it"),
        (400, {"raw": f"<html>bad request from {SECRET}</html>".encode()}, "vendor rejected the request (HTTP 400)"),
        (500, {"body": {"message": f"upstream said {SECRET}"}}, "vendor server error (HTTP 500): upstream said ***"),
    ],
)
async def test_secrets_never_reach_a_message(
    conn: VendorConnection, scripted: ScriptedVendor, status: int, answer: dict[str, Any], shown: str
) -> None:
    exc = await error_for(conn, scripted, status, **answer)
    assert exc.message == shown
    details = repr(getattr(exc, "errors", None))
    assert SECRET not in str(exc) and SECRET not in details, details


def test_scrub_replaces_every_configured_secret(session: aiohttp.ClientSession) -> None:
    conn = VendorConnection("acme", session, "http://127.0.0.1:9", secrets=["k1", "", "k2"])
    assert conn.scrub("k1 and k2 and k1") == "*** and *** and ***"
    assert conn.secrets == ["k1", "k2"]


# -- body size cap -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [200, 500])
async def test_a_body_over_the_cap_is_malformed(
    conn: VendorConnection, scripted: ScriptedVendor, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setattr("gateway.vendor_http.MAX_VENDOR_BODY", 4096)
    scripted.on("GET", PATH, status, raw=b'"' + b"x" * 8192 + b'"')
    with pytest.raises(errors.VendorMalformed, match="too large"):
        await conn.request_json("GET", PATH)
    scripted.on("GET", PATH, 200, raw=b'"' + b"x" * 4000 + b'"')  # under the cap: read whole
    assert len((await conn.request_json("GET", PATH))[1]) == 4000


# -- transport failures ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["reset", "reset_mid_body", "refused"])
async def test_a_broken_connection_is_a_connection_error_not_a_timeout(
    conn: VendorConnection, scripted: ScriptedVendor, session: aiohttp.ClientSession, how: str
) -> None:
    if how == "refused":
        with refused_port() as port:
            refused = connect(session, f"http://127.0.0.1:{port}")
            with pytest.raises(errors.VendorError) as info:
                await refused.request_json("POST", PATH)
    else:
        scripted.on("POST", PATH, 200, {"big": "x" * 4096}, **{how: True})
        with pytest.raises(errors.VendorError) as info:
            await conn.request_json("POST", PATH)
    exc = info.value
    assert type(exc) is errors.VendorConnectionError
    assert not isinstance(exc, errors.VendorTimeout)
    assert (exc.provider, exc.problem_code, exc.http_status, exc.failover) == ("acme", "upstream_error", 502, True)


async def test_no_answer_in_time_is_a_timeout(session: aiohttp.ClientSession, scripted: ScriptedVendor) -> None:
    scripted.on("GET", PATH, 200, {}, delay_s=0.5)
    slow = connect(session, scripted.url, timeout_s=0.05)
    with pytest.raises(errors.VendorTimeout) as info:
        await slow.request_json("GET", PATH)
    assert (info.value.provider, info.value.problem_code, info.value.http_status) == ("acme", "upstream_timeout", 504)


# -- path segments -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "segment"),
    [("abc-1", "abc-1"), (42, "42"), ("a:b@c", "a%3Ab%40c"), ("x" * 200, "x" * 200), ("v1.2~3", "v1.2~3")],
)
def test_path_segment_accepts_ids_and_quotes_them(value: Any, segment: str) -> None:
    assert path_segment(value) == segment


@pytest.mark.parametrize(
    "value", ["", ".", "..", "a/b", "../x", "a b", "a?b", "a#b", "%2e", "x" * 201, True, 1.5, None]
)
def test_path_segment_refuses_what_could_leave_its_segment(value: Any) -> None:
    with pytest.raises(errors.InputError) as info:
        path_segment(value, name="task_id")
    assert info.value.errors[0]["loc"] == ["vendor_ref", "task_id"]
