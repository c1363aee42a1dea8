"""What a provider declares about its vendor's errors, and the request helpers every plugin uses (contract
section 2, docs/plugins.md "Talking to the vendor"): the message is read where the vendor puts it (never the raw
JSON body), unusual statuses map to typed errors, quota answers are their own error, per-job secrets never reach
a message, and `stream` sends what `request_json` sends."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import aiohttp
import pytest

from gateway.errors import (
    VendorAuthError,
    VendorError,
    VendorNotFound,
    VendorQuotaExceeded,
    VendorServerError,
    VendorValidationError,
)
from gateway.provider import Provider, ProviderConfig
from gateway.states import CanonicalStatus, State
from support.scripted import Answer, ScriptedVendor


class NestedErrors(Provider):
    """A vendor that answers `{"error": {"code", "message"}}` and 456 when the account's quota is used up."""

    name: ClassVar[str] = "nested_errors_test"
    display_name: ClassVar[str] = "Nested errors (test)"
    error_fields: ClassVar[tuple[str, ...]] = ("error.message",)
    status_errors = {456: VendorQuotaExceeded}

    def normalize(self, body: Any) -> CanonicalStatus:
        return CanonicalStatus(state=State.UNKNOWN)


@pytest.fixture
async def nested_vendor(scripted: ScriptedVendor) -> AsyncIterator[tuple[ScriptedVendor, aiohttp.ClientSession]]:
    """A vendor answering what the test scripts (anything else: 404 in NestedErrors' shape), and a session."""
    scripted.default = Answer(404, {"error": {"message": "no such path"}})
    async with aiohttp.ClientSession() as session:
        yield scripted, session


def _conn(nested_vendor, provider: Provider | None = None, **config: Any):
    scripted, session = nested_vendor
    provider = provider or NestedErrors()
    return provider.connect(session, ProviderConfig(base_url=scripted.url, **config))


async def _error(nested_vendor, status: int, body: Any, headers: dict[str, str] | None = None, provider=None):
    answer = {"raw": body} if isinstance(body, bytes) else {"body": body}
    nested_vendor[0].on("GET", "/x", status, headers=headers or {}, **answer)
    with pytest.raises(VendorError) as caught:
        await _conn(nested_vendor, provider).request_json("GET", "/x")
    return caught.value


async def test_the_message_is_read_where_the_provider_says_the_vendor_puts_it(nested_vendor):
    exc = await _error(nested_vendor, 404, {"error": {"code": "NotFound", "message": "Batch b1 does not exist"}})
    assert isinstance(exc, VendorNotFound) and exc.message == "Batch b1 does not exist"
    exc = await _error(nested_vendor, 500, {"error": {"code": "Boom", "message": "disk full"}})
    assert isinstance(exc, VendorServerError) and exc.message == "vendor server error (HTTP 500): disk full"


@pytest.mark.parametrize(
    "body",
    [{"detail": "elsewhere"}, {"error": {"code": "X"}}, {"error": {"message": ""}}, [1, 2], {"weird": {"a": 1}}],
)
async def test_the_raw_json_body_never_lands_in_a_message(nested_vendor, body):
    exc = await _error(nested_vendor, 404, body)
    assert exc.message == "vendor does not know this resource"
    assert "{" not in str(exc) and "[" not in str(exc)


async def test_a_plain_text_body_is_a_message_but_markup_is_not(nested_vendor):
    assert (await _error(nested_vendor, 404, b"job gone")).message == "job gone"
    assert (
        await _error(nested_vendor, 404, b"<html><b>404</b></html>")
    ).message == "vendor does not know this resource"


async def test_an_unusual_status_maps_to_its_declared_typed_error(nested_vendor):
    exc = await _error(
        nested_vendor, 456, {"error": {"message": "Quota exceeded for this billing period"}}, {"Retry-After": "120"}
    )
    assert isinstance(exc, VendorQuotaExceeded)
    assert exc.problem_code == "upstream_quota_exceeded" and exc.http_status == 402 and exc.failover
    assert exc.message == "Quota exceeded for this billing period" and exc.retry_after == 120 and exc.status == 456


async def test_an_undeclared_unusual_status_is_a_plain_vendor_error(nested_vendor):
    class Plain(NestedErrors):
        status_errors: ClassVar[dict[int, type[VendorError]]] = {}

    exc = await _error(nested_vendor, 456, {"error": {"message": "quota"}}, provider=Plain())
    assert type(exc) is VendorError and exc.message == "unexpected vendor answer (HTTP 456): quota"


async def test_http_402_is_a_quota_error_for_every_provider(nested_vendor):
    class Plain(NestedErrors):
        error_fields: ClassVar[tuple[str, ...]] = ("detail",)

    exc = await _error(nested_vendor, 402, {"detail": "Payment required"}, provider=Plain())
    assert isinstance(exc, VendorQuotaExceeded) and exc.message == "Payment required"


async def test_auth_and_validation_keep_their_types_with_the_vendor_message(nested_vendor):
    exc = await _error(nested_vendor, 401, {"error": {"message": "Access denied due to invalid subscription key"}})
    assert isinstance(exc, VendorAuthError)
    assert exc.message == "vendor refused the credentials (HTTP 401): Access denied due to invalid subscription key"
    exc = await _error(nested_vendor, 400, {"error": {"message": "targetLanguage is not supported"}})
    assert isinstance(exc, VendorValidationError)
    assert exc.errors == [{"loc": ["input"], "msg": "targetLanguage is not supported"}]


async def test_per_job_secrets_are_scrubbed_from_messages_and_details(nested_vendor):
    secret = "dk-0a1b2c3d4e5f"
    nested_vendor[0].on(
        "POST", "/x", 422, {"error": {"message": [{"loc": ["body", "key"], "msg": f"{secret} expired"}]}}
    )
    conn = _conn(nested_vendor).with_secrets([secret])
    with pytest.raises(VendorValidationError) as caught:
        await conn.request_json("POST", "/x", json_body={"document_key": secret})
    exc = caught.value
    assert secret not in str(exc) and secret not in json.dumps(exc.errors)
    assert exc.errors == [{"loc": ["input", "body", "key"], "msg": "*** expired"}]
    plain = _conn(nested_vendor)
    assert plain.secrets == [] and plain.with_secrets([]) is plain  # no secret: the connection itself


async def test_a_view_with_secrets_shares_the_connection_cache(nested_vendor):
    conn = _conn(nested_vendor)
    view = conn.with_secrets(["s3cret-value"])
    view.cache["languages"] = 1
    assert conn.cache == {"languages": 1} and view.secrets == ["s3cret-value"] and conn.secrets == []


async def test_stream_takes_method_json_body_params_and_allow_like_request_json(nested_vendor):
    scripted = nested_vendor[0]
    scripted.on("POST", "/file", 200, raw=b"translated bytes")
    conn = _conn(nested_vendor)
    async with conn.stream("POST", "/file", json_body={"document_key": "k1"}, params={"v": "2"}) as resp:
        assert await resp.read() == b"translated bytes"
    call = scripted.calls[-1]
    assert (call.method, call.path, call.query, call.headers["Content-Type"]) == (
        "POST",
        "/file",
        {"v": "2"},
        "application/json",
    )
    assert json.loads(call.body) == {"document_key": "k1"}
    scripted.on("POST", "/file", 410, {"error": {"message": "already downloaded"}})
    async with conn.stream("POST", "/file", json_body={}, allow=(410,)) as resp:
        assert resp.status == 410
        error = conn.error_for(resp.status, await resp.read(), resp.headers)
    assert type(error) is VendorError and error.message == "unexpected vendor answer (HTTP 410): already downloaded"
    with pytest.raises(VendorError, match="already downloaded"):
        async with conn.stream("POST", "/file", json_body={}):
            pass


async def test_a_form_body_and_per_request_headers(nested_vendor):
    scripted = nested_vendor[0]
    scripted.on("POST", "/form", 200, {"ok": True})
    status, body = await _conn(nested_vendor).request_json("POST", "/form", data={"a": "1"}, headers={"X-Extra": "y"})
    assert (status, body) == (200, {"ok": True})
    call = scripted.calls[-1]
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded" and call.body == b"a=1"
