"""Every installed provider against its live simulator: each vendor failure surfaces as its typed error.

Parametrized over `gateway.plugins.get_providers()` (the `live` and `case` fixtures); what only one provider does
stays in its own test_<name>_client.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.errors import (
    InputError,
    VendorAuthError,
    VendorConnectionError,
    VendorError,
    VendorMalformed,
    VendorNotFound,
    VendorRateLimited,
    VendorServerError,
    VendorTimeout,
)
from gateway.provider import Provider
from gateway.states import State
from gateway.testing import conformance
from gateway.testing.case import ConformanceCase
from gateway.testing.harness import VendorHarness
from support.refusals import refused_before_sending

OPERATIONS = ["submit", "status"]
Call = Callable[[], Awaitable[Any]]


async def operation(live: VendorHarness, case: ConformanceCase, which: str) -> Call:
    """One vendor operation to fail: submitting the case's valid input, or reading a submitted job's status."""
    if which == "submit":
        return lambda: live.provider.submit(live.conn, case.valid_input)
    ref = await live.provider.submit(live.conn, case.valid_input)
    return lambda: live.provider.fetch_status(live.conn, ref)


async def fails_with(live: VendorHarness, call: Call, error: type[VendorError]) -> VendorError:
    """Run the call; it must raise `error`, naming the provider and holding no trace of the vendor key."""
    with pytest.raises(error) as info:
        await call()
    assert info.value.provider == live.provider.name
    assert live.key and live.key not in str(info.value)
    return info.value


@pytest.mark.parametrize("which", OPERATIONS)
async def test_rate_limited_with_retry_after(live: VendorHarness, case: ConformanceCase, which: str) -> None:
    call = await operation(live, case, which)
    await live.fault("http_429", retry_after_s=7)
    exc = await fails_with(live, call, VendorRateLimited)
    assert (exc.status, exc.retry_after, exc.problem_code) == (429, 7.0, "upstream_rate_limited")
    await call()  # one fault only: the next request is answered


@pytest.mark.parametrize("which", OPERATIONS)
@pytest.mark.parametrize(("kind", "status", "retry_after"), [("http_500", 500, None), ("http_503", 503, 3.0)])
async def test_server_errors_for_as_many_requests_as_asked(
    live: VendorHarness, case: ConformanceCase, which: str, kind: str, status: int, retry_after: float | None
) -> None:
    call = await operation(live, case, which)
    await live.fault(kind, count=2, retry_after_s=retry_after)
    for _ in range(2):
        exc = await fails_with(live, call, VendorServerError)
        assert (exc.status, exc.retry_after, exc.failover) == (status, retry_after, True)
    await call()


@pytest.mark.parametrize("which", OPERATIONS)
async def test_timeout(live: VendorHarness, case: ConformanceCase, which: str) -> None:
    call = await operation(live, case, which)
    live.conn = live.connect(timeout_s=0.05)
    await live.fault("delay", delay_s=0.3)
    exc = await fails_with(live, call, VendorTimeout)
    assert exc.problem_code == "upstream_timeout"


@pytest.mark.parametrize("which", OPERATIONS)
async def test_delay_answers_late_but_answers(live: VendorHarness, case: ConformanceCase, which: str) -> None:
    call = await operation(live, case, which)
    await live.fault("delay", delay_s=0.15)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await call()  # real network I/O: the simulator holds its answer back on the loop's own timer
    assert loop.time() - started >= 0.14


@pytest.mark.parametrize("which", OPERATIONS)
async def test_connection_reset(live: VendorHarness, case: ConformanceCase, which: str) -> None:
    call = await operation(live, case, which)
    # two: aiohttp retries an idempotent request once when a kept-alive connection drops
    await live.fault("reset", count=2)
    exc = await fails_with(live, call, VendorConnectionError)
    assert not isinstance(exc, VendorTimeout) and exc.problem_code == "upstream_error"
    await live.clear_faults()
    await call()


@pytest.mark.parametrize("which", OPERATIONS)
async def test_malformed_json(live: VendorHarness, case: ConformanceCase, which: str) -> None:
    call = await operation(live, case, which)
    await live.fault("malformed_json")
    await fails_with(live, call, VendorMalformed)
    await call()


async def test_unknown_status_normalizes_to_unknown(live: VendorHarness, case: ConformanceCase) -> None:
    read = await operation(live, case, "status")
    normal = live.provider.normalize(await read())
    await live.fault("unknown_status")
    status = live.provider.normalize(await read())
    assert (status.state, status.vendor_status, status.terminal) == (State.UNKNOWN, "sim_unknown_status", False)
    assert live.provider.normalize(await read()) == normal  # one answer only


@pytest.mark.parametrize("key", ["invalid", None], ids=["invalid-key", "no-key"])
async def test_auth_failure(live: VendorHarness, case: ConformanceCase, key: str | None) -> None:
    if not case.has_auth:
        pytest.skip(f"{live.provider.name}'s vendor has no authentication (its conformance case: has_auth=False)")
    live.conn = live.connect(key)
    if key is None:
        assert not set(live.conn.headers) & set(live.provider.auth_headers("any-key")), "no key, no auth header"
    for call in (
        lambda: live.provider.submit(live.conn, case.valid_input),
        lambda: live.provider.fetch_status(live.conn, case.unknown_ref),  # refused before the lookup
    ):
        exc = await fails_with(live, call, VendorAuthError)
        assert (exc.status, exc.problem_code) == (401, "upstream_auth_failed")


async def test_not_found(live: VendorHarness, case: ConformanceCase) -> None:
    for call in (
        lambda: live.provider.fetch_status(live.conn, case.unknown_ref),
        lambda: live.provider.fetch_result(live.conn, case.unknown_ref, None),
    ):
        exc = await fails_with(live, call, VendorNotFound)
        assert (exc.status, exc.problem_code, exc.failover) == (404, "not_found", False)
        assert exc.message != "vendor does not know this resource"  # the vendor's own detail is kept


async def test_conformance_kit_against_the_live_simulator(live: VendorHarness, case: ConformanceCase) -> None:
    """The kit plugin authors run (gateway/testing/conformance.py), and the case covering every vendor status."""
    assert case.provider == live.provider.name
    assert {patch["status"] for patch, _ in case.status_patches} == set(live.provider.mapping)
    control = conformance.SimControl(live.session, live.base_url)
    ref, seen, result = await conformance.scenario_lifecycle(live.provider, case, live.conn, control)
    assert case.sim_job_id(ref) in live.sim.jobs
    assert [s.state for s in seen] == [state for _, state in case.status_patches]
    assert result.outputs or result.has_artifact
    await conformance.scenario_not_found(live.provider, case, live.conn)
    await conformance.scenario_validation(live.provider, case, live.conn)
    await conformance.scenario_faults(live.provider, case, live.conn, control)
    conformance.check_mapping_total(live.provider)
    if case.has_auth:
        await conformance.scenario_auth_failure(live.provider, case, live.connect("invalid"))


#: vendor ids that could leave their URL path segment (or are no id at all); never sent
HOSTILE_IDS = ["../../etc/passwd", "a/b", "..", "", "x y", "x?y=1", "x#y", "%2e%2e", "x" * 201, None, 1.5, True, ["a"]]


@pytest.mark.parametrize("hostile", HOSTILE_IDS, ids=repr)
async def test_hostile_vendor_ids_never_reach_the_vendor(live: VendorHarness, case: ConformanceCase, hostile: Any):
    provider = live.provider
    for field, value in case.unknown_ref.items():
        if not isinstance(value, str):
            continue  # the id fields of the ref (other fields, such as Datafold's project_id: its own tests)
        ref = {**case.unknown_ref, field: hostile}
        with pytest.raises(InputError) as info:
            provider.validate_ref(ref)
        assert info.value.errors[0]["loc"] == ["vendor_ref", field]
        await refused_before_sending(live, lambda ref=ref: provider.fetch_status(live.conn, ref))
        await refused_before_sending(live, lambda ref=ref: provider.fetch_result(live.conn, ref, None))
        if provider.capabilities.artifact:
            await refused_before_sending(live, lambda ref=ref: _open_artifact(provider, live, ref))


async def _open_artifact(provider: Provider, live: VendorHarness, ref: dict[str, Any]) -> None:
    async with provider.open_artifact(live.conn, ref):
        pytest.fail("must not open")
