"""CAMB.AI status mapping (contract 1.1): every documented status, the vendor's own shapes, and strange bodies."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.states import CanonicalStatus, State
from providers.camb.client import CambProvider
from providers.camb.mapping import MAPPING, MAPPING_NOTES, normalize

# (status, state, error code, retryable)
ROWS = [
    ("PENDING", State.RUNNING, None, None),
    ("SUCCESS", State.SUCCEEDED, None, None),
    ("ERROR", State.FAILED, "vendor_error", False),
    ("TIMEOUT", State.FAILED, "timeout", True),
    ("PAYMENT_REQUIRED", State.FAILED, "payment_required", False),
]


@pytest.mark.parametrize(("status", "state", "code", "retryable"), ROWS)
def test_every_documented_status(status: str, state: State, code: str | None, retryable: bool | None) -> None:
    got = normalize({"status": status, "run_id": None})
    assert got.state is state
    assert got.terminal is state.terminal
    assert got.vendor_status == status
    assert got.progress is None
    assert got.stage is None
    assert got.action is None
    assert got.issues == []
    if code is None:
        assert got.error is None
    else:
        assert got.error is not None
        assert got.error.code == code
        assert got.error.retryable is retryable
        assert got.error.message


def test_table_covers_the_schema_enum_and_has_notes() -> None:
    # TaskStatus enum of the vendor's OpenAPI schema
    assert set(MAPPING) == {"SUCCESS", "PENDING", "TIMEOUT", "ERROR", "PAYMENT_REQUIRED"}
    assert set(MAPPING_NOTES) == set(MAPPING)
    assert CambProvider.mapping == MAPPING
    assert CambProvider().describe()["mapping"]["PENDING"] == "running"


# The vendor doc has no literal example payload; these are instances of its OpenAPI schema
# `OrchestratorPipelineResult` ({"status": TaskStatus, "run_id": integer | null}) as the doc describes them.
DOC_BODIES = [
    ({"status": "PENDING", "run_id": None}, State.RUNNING),
    ({"status": "PENDING"}, State.RUNNING),
    ({"status": "SUCCESS", "run_id": 12345}, State.SUCCEEDED),
    ({"status": "ERROR", "run_id": None}, State.FAILED),
    ({"status": "TIMEOUT", "run_id": None}, State.FAILED),
    ({"status": "PAYMENT_REQUIRED", "run_id": None}, State.FAILED),
]


@pytest.mark.parametrize(("body", "state"), DOC_BODIES)
def test_vendor_schema_bodies(body: dict[str, Any], state: State) -> None:
    assert normalize(body).state is state


def test_error_details_from_the_vendor_are_kept_in_the_message() -> None:
    got = normalize({"status": "ERROR", "run_id": None, "message": "translation engine unavailable"})
    assert got.error is not None
    assert "translation engine unavailable" in got.error.message
    long = normalize({"status": "ERROR", "detail": "x" * 5000})
    assert long.error is not None and len(long.error.message) < 700


UNKNOWN_STRINGS = ["pending", "Success", "RUNNING", "QUEUED", "", " PENDING", "PENDING ", "sim_unknown_status"]


@pytest.mark.parametrize("status", UNKNOWN_STRINGS)
def test_unknown_status_strings_are_unknown_with_raw_value(status: str) -> None:
    got = normalize({"status": status, "run_id": None})
    assert got.state is State.UNKNOWN
    assert got.terminal is False
    assert got.vendor_status == status
    assert got.error is None


STRANGE = [
    {},
    {"run_id": 5},
    {"status": None, "run_id": None},
    {"status": 1},
    {"status": True},
    {"status": ["SUCCESS"]},
    {"status": {"value": "SUCCESS"}},
    {"status": 3.5, "run_id": "x"},
    {None: None},
    [],
    [{"status": "SUCCESS"}],
    "SUCCESS",
    "",
    0,
    7,
    1.5,
    True,
    None,
    b"SUCCESS",
]


@pytest.mark.parametrize("body", STRANGE, ids=repr)
def test_strange_bodies_give_unknown_without_raising(body: Any) -> None:
    got = normalize(body)
    assert isinstance(got, CanonicalStatus)
    assert got.state is State.UNKNOWN
    assert got.vendor_status is None


WRONG_TYPES_AROUND_A_GOOD_STATUS = [
    ({"status": "SUCCESS", "run_id": "not-an-int"}, State.SUCCEEDED),
    ({"status": "SUCCESS", "run_id": None, "extra": {"nested": [1, 2]}}, State.SUCCEEDED),
    ({"status": "PENDING", "run_id": [1]}, State.RUNNING),
    ({"status": "ERROR", "message": None, "error": 42, "detail": []}, State.FAILED),
    ({"status": "TIMEOUT", "message": "", "unexpected": True}, State.FAILED),
    ({"status": "PAYMENT_REQUIRED", "run_id": {"a": 1}}, State.FAILED),
]


@pytest.mark.parametrize(("body", "state"), WRONG_TYPES_AROUND_A_GOOD_STATUS, ids=repr)
def test_wrong_types_and_extra_fields_beside_a_known_status(body: dict[str, Any], state: State) -> None:
    got = normalize(body)
    assert got.state is state
    assert got.vendor_status == body["status"]
    if state is State.FAILED:
        assert got.error is not None and got.error.message


def test_provider_normalize_is_the_mapping() -> None:
    provider = CambProvider()
    assert provider.normalize({"status": "TIMEOUT"}) == normalize({"status": "TIMEOUT"})
    assert provider.normalize(None).state is State.UNKNOWN
