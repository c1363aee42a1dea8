"""The provider against its vendor, replayed from cassettes (re-record from the simulator with
`GATEWAY_RECORD=1 pytest --record-mode=all -p no:xdist`, or `make cassettes` in the gateway's repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ResultGone, VendorQuotaExceeded, VendorValidationError
from gateway.models import Unit, UnitCount
from gateway.states import State
from gateway.testing import conformance
from gateway.testing.cassettes import assert_no_secret_in, redacted
from gateway.testing.pytest_plugin import live
from gateway_azure_batch.conformance import CASE, TEXT

CASSETTES = Path(__file__).parent / "cassettes"


@pytest.mark.vcr
async def test_cassette_lifecycle(gateway_provider, gateway_conn, gateway_sim_control):
    _ref, seen, result = await conformance.scenario_lifecycle(gateway_provider, CASE, gateway_conn, gateway_sim_control)
    assert [s.state for s in seen] == [expected for _, expected in CASE.status_patches]
    assert {s.vendor_status for s in seen} == set(gateway_provider.mapping)
    assert [o.target for o in result.outputs] == ["[de] Hello", "[de] Good bye"]


@pytest.mark.vcr
async def test_cassette_result_can_be_read_once(gateway_provider, gateway_conn, gateway_sim_control):
    """Every translated document comes back with its characters; the vendor hands each out once only."""
    ref = await gateway_provider.submit(gateway_conn, TEXT)
    assert set(ref) == {"batch_id", "batchKey"}
    if not live():
        assert ref["batchKey"] == redacted("batchKey")  # the cassette holds no key, and replays all the same
    await gateway_sim_control.force(ref["batch_id"], {"status": "Succeeded"})
    body = await gateway_provider.fetch_status(gateway_conn, ref)
    assert gateway_provider.normalize(body).state is State.SUCCEEDED
    parts = await gateway_provider.fetch_result(gateway_conn, ref, body)
    assert [(o.name, o.target, o.status) for o in parts.outputs] == [
        ("0.txt", "[de] Hello", "Succeeded"),
        ("1.txt", "[de] Good bye", "Succeeded"),
    ]
    assert parts.usage is not None and parts.usage.units == [
        UnitCount(unit=Unit.CHARACTERS, quantity=len("Hello") + len("Good bye")),
        UnitCount(unit=Unit.DOCUMENTS, quantity=2),
    ]
    with pytest.raises(ResultGone, match="already downloaded"):
        await gateway_provider.fetch_result(gateway_conn, ref, body)


@pytest.mark.vcr
async def test_cassette_cancel(gateway_provider, gateway_conn):
    ref = await gateway_provider.submit(gateway_conn, TEXT)
    await gateway_provider.cancel(gateway_conn, ref)
    status = gateway_provider.normalize(await gateway_provider.fetch_status(gateway_conn, ref))
    assert status.state is State.CANCELLED and status.vendor_status == "Cancelled"


@pytest.mark.vcr
async def test_cassette_estimate(gateway_provider, gateway_conn, gateway_sim_control):
    ref = await gateway_provider.submit(gateway_conn, TEXT)
    await gateway_sim_control.force(ref["batch_id"], {"status": "Running", "estimatedSecondsRemaining": 42})
    status = gateway_provider.normalize(await gateway_provider.fetch_status(gateway_conn, ref))
    assert status.state is State.RUNNING and status.eta_s == 42
    assert gateway_provider.suggest_poll_s(status) == 43  # shortly after the vendor's own estimate


@pytest.mark.vcr
async def test_cassette_quota(gateway_provider, gateway_conn, gateway_sim_control):
    """HTTP 456 is the vendor's "quota used up": its own typed error, with the vendor's message."""
    await gateway_sim_control.fault("quota_exceeded")
    with pytest.raises(VendorQuotaExceeded, match="quota of this subscription is used up") as caught:
        await gateway_provider.submit(gateway_conn, TEXT)
    assert caught.value.status == 456 and caught.value.problem_code == "upstream_quota_exceeded"
    ref = await gateway_provider.submit(gateway_conn, TEXT)
    await gateway_sim_control.fault("quota_exceeded")
    with pytest.raises(VendorQuotaExceeded):
        await gateway_provider.fetch_status(gateway_conn, ref)


@pytest.mark.vcr
async def test_cassette_auth_failure(gateway_provider, gateway_connect):
    await conformance.scenario_auth_failure(gateway_provider, CASE, gateway_connect(key="invalid"))


@pytest.mark.vcr
async def test_cassette_not_found(gateway_provider, gateway_conn):
    await conformance.scenario_not_found(gateway_provider, CASE, gateway_conn)


@pytest.mark.vcr
async def test_cassette_validation_error(gateway_provider, gateway_conn):
    with pytest.raises(VendorValidationError, match="'tlh' is not a supported language"):
        await gateway_provider.submit(gateway_conn, CASE.invalid_input)


@pytest.mark.vcr
async def test_cassette_faults(gateway_provider, gateway_conn, gateway_sim_control):
    await conformance.scenario_faults(gateway_provider, CASE, gateway_conn, gateway_sim_control)


def test_mapping_is_total(gateway_provider):
    conformance.check_mapping_total(gateway_provider)


def test_no_cassette_holds_a_key(gateway_provider, gateway_vendor_key):
    checked = assert_no_secret_in(CASSETTES, [gateway_vendor_key], secret_fields=gateway_provider.private_ref_fields)
    assert checked >= 9  # one cassette per test above that talks to the vendor
