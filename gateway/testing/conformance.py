"""The conformance kit: checks a provider's behaviour contract against its simulator or its cassettes.

- mapping total: every status of the mapping table and every strange body gives a canonical status, never raises;
- errors typed: each vendor failure surfaces as the right `gateway.errors` type;
- secrets scrubbed: `gateway.testing.cassettes.assert_no_secret_in`.

Scenarios that force vendor states or inject faults use the simulator's `__sim__` control API; when
replaying cassettes the control calls are not needed (the cassette already holds their effect).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import aiohttp

from gateway.errors import (
    VendorAuthError,
    VendorMalformed,
    VendorNotFound,
    VendorRateLimited,
    VendorServerError,
    VendorValidationError,
)
from gateway.models import ResultParts
from gateway.provider import Provider
from gateway.states import CanonicalStatus, State
from gateway.testing.case import ConformanceCase
from gateway.vendor_http import VendorConnection

E = TypeVar("E", bound=BaseException)

#: bodies no vendor should send; `"status"` stands for the provider's own `status_field`
STRANGE_BODIES: list[Any] = [
    None,
    [],
    [1, 2],
    "done",
    42,
    3.5,
    True,
    {},
    {"status": None},
    {"status": 17},
    {"status": ["processing"]},
    {"status": {"value": "done"}},
    {"status": "definitely-not-a-vendor-status"},
    {"status": ""},
    {"status": "processing", "progress": "half", "segments": "many", "translated_models": 5, "current_step": 9},
    {"status": "done", "translated_models": [None, 1, "x", {"asset_name": None}]},
    {"status": "completed_with_blocks", "segments": [None, {"id": None, "status": 5}]},
    {"status": "processing", "unexpected": {"deep": [1, {"x": None}]}},
    {"status": "processing", "progress": float("inf"), "segment_count": float("nan")},
]


def status_body(provider: Provider, status: Any, **rest: Any) -> dict[str, Any]:
    """A status body with `status` where this provider's vendor puts its status (`status_field`, dotted for a
    nested one) and the other fields of `rest`."""
    body: dict[str, Any] = dict(rest)
    *parents, last = provider.status_field.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = status
    return body


def _in_provider_shape(provider: Provider, body: Any) -> Any:
    if isinstance(body, dict) and "status" in body:
        rest = {k: v for k, v in body.items() if k != "status"}
        return status_body(provider, body["status"], **rest)
    return body


def check_mapping_total(provider: Provider) -> None:
    """Every mapped status, in a body with nothing else, gives its table state; strange bodies never raise;
    unknown strings give `unknown`. Bodies carry the status where the provider says (`status_field`)."""
    for status, state in provider.mapping.items():
        got = provider.normalize(status_body(provider, status))
        assert isinstance(got, CanonicalStatus), status
        assert got.vendor_status == status, status
        assert got.state is state, f"{provider.name}: {status!r} gave {got.state}, table says {state}"
    for body in STRANGE_BODIES:
        got = provider.normalize(_in_provider_shape(provider, body))
        assert isinstance(got, CanonicalStatus), body
    unknown = provider.normalize(status_body(provider, "definitely-not-a-vendor-status"))
    assert unknown.state is State.UNKNOWN and unknown.vendor_status == "definitely-not-a-vendor-status"
    assert provider.normalize(status_body(provider, 17)).vendor_status is None


class SimControl:
    """Calls a simulator's control API; a no-op when replaying (url None)."""

    def __init__(self, session: aiohttp.ClientSession | None, base_url: str | None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/") if base_url else None

    @property
    def live(self) -> bool:
        return self.base_url is not None

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        if self.base_url is None or self.session is None:
            return
        async with self.session.post(self.base_url + path, json=body) as resp:
            assert resp.status == 200, f"simulator control {path} answered {resp.status}"

    async def force(self, job_id: str, patch: dict[str, Any]) -> None:
        await self._post(f"/__sim__/jobs/{job_id}/state", patch)

    async def fault(self, kind: str, count: int = 1, **extra: Any) -> None:
        await self._post("/__sim__/faults", {"fault": kind, "count": count, **extra})


async def scenario_lifecycle(
    provider: Provider, case: ConformanceCase, conn: VendorConnection, control: SimControl
) -> tuple[dict[str, Any], list[CanonicalStatus], ResultParts]:
    """Submit, walk the job through every vendor status, then read its result."""
    ref = await provider.submit(conn, case.valid_input)
    assert isinstance(ref, dict) and ref, "submit must return a non-empty vendor_ref"
    seen = []
    for patch, expected in case.status_patches:
        await control.force(case.sim_job_id(ref), patch)
        body = await provider.fetch_status(conn, ref)
        status = provider.normalize(body)
        assert status.state is expected, f"{patch} gave {status.state}, expected {expected}"
        seen.append(status)
    await control.force(case.sim_job_id(ref), case.finished_patch)
    body = await provider.fetch_status(conn, ref)
    ref = provider.refine_ref(ref, body)
    result = await provider.fetch_result(conn, ref, body)
    assert isinstance(result, ResultParts)
    return ref, seen, result


async def _raised(work: Awaitable[Any], expected: type[E] | tuple[type[E], ...], failure: str) -> E:
    """The error `work` raised, one of `expected`; AssertionError(`failure`) when it raised none."""
    try:
        await work
    except expected as exc:
        return exc
    raise AssertionError(failure)


async def scenario_auth_failure(provider: Provider, case: ConformanceCase, bad_conn: VendorConnection) -> None:
    """A refused key is a VendorAuthError."""
    await _raised(
        provider.submit(bad_conn, case.valid_input), VendorAuthError, "a refused key did not raise VendorAuthError"
    )


async def scenario_not_found(provider: Provider, case: ConformanceCase, conn: VendorConnection) -> None:
    await _raised(
        provider.fetch_status(conn, case.unknown_ref), VendorNotFound, "an unknown job did not raise VendorNotFound"
    )


async def scenario_validation(provider: Provider, case: ConformanceCase, conn: VendorConnection) -> None:
    exc = await _raised(
        provider.submit(conn, case.invalid_input),
        (VendorValidationError, VendorNotFound),
        "an input the vendor rejects did not raise VendorValidationError",
    )
    if isinstance(exc, VendorValidationError):
        assert exc.errors and all("loc" in e and "msg" in e for e in exc.errors)


async def scenario_faults(
    provider: Provider, case: ConformanceCase, conn: VendorConnection, control: SimControl
) -> None:
    """Rate limit (with Retry-After), server errors, malformed body and an unknown status, on status reads."""
    ref = await provider.submit(conn, case.valid_input)
    await control.fault("http_429", retry_after_s=7)
    limited = await _raised(provider.fetch_status(conn, ref), VendorRateLimited, "429 did not raise")
    assert limited.retry_after == 7
    for kind in ("http_500", "http_503"):
        await control.fault(kind)
        failed = await _raised(provider.fetch_status(conn, ref), VendorServerError, f"{kind} did not raise")
        assert failed.status == int(kind[-3:])
    await control.fault("malformed_json")
    await _raised(provider.fetch_status(conn, ref), VendorMalformed, "a malformed body did not raise")
    await control.fault("unknown_status")
    body = await provider.fetch_status(conn, ref)
    status = provider.normalize(body)
    assert status.state is State.UNKNOWN and not status.terminal
