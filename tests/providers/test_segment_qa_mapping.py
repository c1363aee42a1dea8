"""segment_qa: the mapping of contract 1.1 and `normalize` on every kind of body, however strange."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from typing import Any

import pytest

from gateway.states import CanonicalStatus, State
from providers.segment_qa import plugin
from providers.segment_qa.client import SegmentQAProvider
from providers.segment_qa.mapping import (
    DEAD_MESSAGE,
    MAPPING,
    NEEDS_REVIEW_MESSAGE,
    RETRYING_MESSAGE,
    normalize,
)
from support.cases.segment_qa import DOC_RESULT_EXAMPLE, DOC_STATUS_EXAMPLE


def seg(i: int, status: str, error: str | None = None) -> dict[str, Any]:
    return {"id": i, "status": status, "qa_score": None, "retry_count": 0, "error": error}


# -- the table ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vendor_status", "state"),
    [
        ("queued", State.QUEUED),
        ("processing", State.RUNNING),
        ("correcting", State.RUNNING),
        ("completed", State.SUCCEEDED),
        ("completed_with_blocks", State.COMPLETED_WITH_ISSUES),
        ("needs_review", State.COMPLETED_WITH_ISSUES),
        ("failed", State.QUEUED),
        ("dead", State.FAILED),
    ],
)
def test_every_vendor_status_maps_to_its_state(vendor_status: str, state: State) -> None:
    status = normalize({"status": vendor_status})
    assert status.state is state
    assert status.terminal is state.terminal
    assert status.vendor_status == vendor_status
    assert MAPPING[vendor_status] is state


def test_mapping_table_is_exactly_the_documented_statuses() -> None:
    documented = {"queued", "processing", "correcting", "completed", "completed_with_blocks", "needs_review"}
    assert set(MAPPING) == documented | {"failed", "dead"}
    provider = SegmentQAProvider()
    assert provider.describe()["mapping"] == {k: str(v) for k, v in MAPPING.items()}
    assert set(provider.mapping_notes) <= set(MAPPING)


@pytest.mark.parametrize("vendor_status", ["queued", "completed", "failed", "dead", "needs_review"])
def test_stage_is_only_set_while_running(vendor_status: str) -> None:
    assert normalize({"status": vendor_status, "current_step": "translator"}).stage is None


@pytest.mark.parametrize("step", ["supervisor", "source_review", "translator", "qa", "finalizing", None])
def test_processing_stage_is_current_step(step: str | None) -> None:
    assert normalize({"status": "processing", "current_step": step}).stage == step


def test_correcting_stage_is_correcting_whatever_the_step() -> None:
    status = normalize({"status": "correcting", "current_step": "translator"})
    assert (status.state, status.stage) == (State.RUNNING, "correcting")


def test_completed_has_no_issues_or_error() -> None:
    status = normalize({"status": "completed", "segments": [seg(0, "done")], "segment_count": 1})
    assert status.issues == [] and status.error is None and status.action is None


def test_completed_with_blocks_gives_one_issue_per_blocked_segment() -> None:
    body = {
        "status": "completed_with_blocks",
        "segment_count": 4,
        "segments": [
            seg(0, "blocked", "Markup conflict: unbalanced tags"),
            seg(1, "done"),
            seg(2, "blocked"),
            seg(3, "failed", "not a block"),
        ],
    }
    status = normalize(body)
    assert status.state is State.COMPLETED_WITH_ISSUES
    assert [i.model_dump() for i in status.issues] == [
        {"code": "blocked", "message": "Markup conflict: unbalanced tags", "target": "0", "hint": None},
        {"code": "blocked", "message": None, "target": "2", "hint": None},
    ]


def test_completed_with_blocks_with_string_segment_ids() -> None:
    status = normalize({"status": "completed_with_blocks", "segments": [{"id": "s-7", "status": "blocked"}]})
    assert [i.target for i in status.issues] == ["s-7"]


def test_needs_review_uses_the_vendors_warning() -> None:
    status = normalize({"status": "needs_review", "warning": "QA score 71.0 below threshold 85.0"})
    assert status.state is State.COMPLETED_WITH_ISSUES
    assert [(i.code, i.message) for i in status.issues] == [("needs_review", "QA score 71.0 below threshold 85.0")]


@pytest.mark.parametrize("warning", [None, "", "   ", 42, ["x"], {"a": 1}])
def test_needs_review_without_a_usable_warning_uses_a_fixed_sentence(warning: Any) -> None:
    body: dict[str, Any] = {"status": "needs_review"}
    if warning is not None:
        body["warning"] = warning
    status = normalize(body)
    assert [(i.code, i.message) for i in status.issues] == [("needs_review", NEEDS_REVIEW_MESSAGE)]


@pytest.mark.parametrize(
    ("error_log", "message"),
    [
        (["first", "translator worker timed out"], "translator worker timed out"),
        ([{"message": "from an object"}], "from an object"),
        ([{"error": "under error"}, {"detail": "under detail"}], "under detail"),
        (["usable", None, "  ", 7], "usable"),
        ([], RETRYING_MESSAGE),
        ("not a list", RETRYING_MESSAGE),
        (None, RETRYING_MESSAGE),
    ],
)
def test_failed_is_queued_with_a_retryable_error(error_log: Any, message: str) -> None:
    status = normalize({"status": "failed", "error_log": error_log})
    assert status.state is State.QUEUED and not status.terminal
    assert status.error is not None
    assert status.error.model_dump() == {"code": "vendor_retrying", "message": message, "retryable": True}


@pytest.mark.parametrize(
    ("error_log", "message"),
    [(["attempt 1 failed", "retries exhausted"], "retries exhausted"), ([], DEAD_MESSAGE)],
)
def test_dead_is_failed_with_retries_exhausted(error_log: list[Any], message: str) -> None:
    status = normalize({"status": "dead", "error_log": error_log})
    assert status.state is State.FAILED and status.terminal
    assert status.error is not None
    assert status.error.model_dump() == {"code": "retries_exhausted", "message": message, "retryable": False}


def test_a_very_long_error_message_is_capped() -> None:
    status = normalize({"status": "dead", "error_log": ["x" * 10_000]})
    assert status.error is not None and len(status.error.message) <= 2000


# -- progress ------------------------------------------------------------------------------------------
FINISHED = ["qa_passed", "done", "blocked", "failed"]
UNFINISHED = ["pending", "processing", "translated", "qa_failed", "correcting"]


@pytest.mark.parametrize("segment_status", FINISHED)
def test_finished_segment_statuses_count(segment_status: str) -> None:
    body = {"status": "processing", "segment_count": 2, "segments": [seg(0, segment_status), seg(1, "pending")]}
    assert normalize(body).progress == 50


@pytest.mark.parametrize("segment_status", UNFINISHED)
def test_unfinished_segment_statuses_do_not_count(segment_status: str) -> None:
    body = {"status": "processing", "segment_count": 2, "segments": [seg(0, segment_status), seg(1, "done")]}
    assert normalize(body).progress == 50


@pytest.mark.parametrize(
    ("segment_count", "statuses", "progress"),
    [
        (0, [], None),  # no segments yet
        (None, [], None),
        (5, [], None),  # declared but not listed: nothing to count
        (0, ["done"], None),  # 0 means not segmented yet
        (3, ["done", "pending", "pending"], 33),  # floor, not round
        (3, ["done", "done", "pending"], 66),
        (None, ["done", "pending"], 50),  # missing count: the list's length
        ("many", ["done", "pending"], 50),  # unreadable count: as missing
        (True, ["done", "pending"], 50),  # a boolean is not a count
        (-3, ["done", "pending"], 50),
        (4, ["done", "pending"], 25),  # count wins over a shorter (partial) list
        (1, ["done", "done", "pending", "pending"], 50),  # a longer list wins over a stale count
        (2, ["done", "blocked"], 100),
        ("4", ["done", "done"], 50),  # a numeric string is read as a number
    ],
)
def test_progress(segment_count: Any, statuses: list[str], progress: int | None) -> None:
    body: dict[str, Any] = {"status": "processing", "segments": [seg(i, s) for i, s in enumerate(statuses)]}
    if segment_count is not None:
        body["segment_count"] = segment_count
    assert normalize(body).progress == progress


def test_progress_ignores_unreadable_segment_entries() -> None:
    body = {"status": "processing", "segments": [None, "x", 3, {"id": 0, "status": "done"}, {"id": 1, "status": 9}]}
    assert normalize(body).progress == 50  # two readable segments, one finished


def test_progress_on_terminal_and_unknown_statuses() -> None:
    segments = [seg(0, "done"), seg(1, "blocked")]
    assert normalize({"status": "completed_with_blocks", "segment_count": 2, "segments": segments}).progress == 100
    assert normalize({"status": "new_thing", "segment_count": 4, "segments": segments}).progress == 50


# -- the vendor doc's examples, verbatim ---------------------------------------------------------------------
def test_doc_status_example() -> None:
    status = normalize(json.loads(DOC_STATUS_EXAMPLE))
    assert status.model_dump() == {
        "state": State.RUNNING,
        "terminal": False,
        "vendor_status": "processing",
        "stage": "translator",
        "progress": 0,  # 0 of 5 finished: "translated" still awaits QA
        "eta_s": None,  # the vendor gives no estimate
        "error": None,
        "action": None,
        "issues": [],
    }


def test_doc_result_example_read_as_a_status_body() -> None:
    status = normalize(json.loads(DOC_RESULT_EXAMPLE))
    assert (status.state, status.vendor_status, status.progress, status.issues) == (
        State.SUCCEEDED,
        "completed",
        100,
        [],
    )


# -- strange bodies: never raise, unknown gives unknown -------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "state", "vendor_status"),
    [
        (None, State.UNKNOWN, None),
        ([], State.UNKNOWN, None),
        ([{"status": "completed"}], State.UNKNOWN, None),
        ("completed", State.UNKNOWN, None),
        (42, State.UNKNOWN, None),
        (3.5, State.UNKNOWN, None),
        (True, State.UNKNOWN, None),
        ({}, State.UNKNOWN, None),
        ({"status": None}, State.UNKNOWN, None),
        ({"status": 5}, State.UNKNOWN, None),
        ({"status": ["completed"]}, State.UNKNOWN, None),
        ({"status": {"value": "completed"}}, State.UNKNOWN, None),
        ({"status": "COMPLETED"}, State.UNKNOWN, "COMPLETED"),
        ({"status": "sim_unknown_status"}, State.UNKNOWN, "sim_unknown_status"),
        ({"status": ""}, State.UNKNOWN, ""),
        ({"status": "archived", "segments": [seg(0, "done")]}, State.UNKNOWN, "archived"),
        (
            {k: None for k in json.loads(DOC_STATUS_EXAMPLE)},  # null everywhere
            State.UNKNOWN,
            None,
        ),
        (
            {**{k: None for k in json.loads(DOC_STATUS_EXAMPLE)}, "status": "completed_with_blocks"},
            State.COMPLETED_WITH_ISSUES,
            "completed_with_blocks",
        ),
        ({"status": "processing", "surprise": {"nested": [1, 2]}, "x": None}, State.RUNNING, "processing"),
        (
            {
                "status": "processing",
                "segment_count": "many",
                "segments": "all of them",
                "token_usage": "lots",
                "cost_eur": "free",
                "error_log": {"a": 1},
                "current_step": 7,
                "source_review_enabled": "maybe",
                "created_at": 12,
            },
            State.RUNNING,
            "processing",
        ),
        (
            {"status": "completed_with_blocks", "segments": [None, 1, "a", {"id": None, "status": "blocked"}]},
            State.COMPLETED_WITH_ISSUES,
            "completed_with_blocks",
        ),
        (
            {"status": "completed_with_blocks", "segments": [{"id": {"x": 1}, "status": "blocked", "error": 5}]},
            State.COMPLETED_WITH_ISSUES,
            "completed_with_blocks",
        ),
        ({"status": "needs_review", "warning": None, "segments": None}, State.COMPLETED_WITH_ISSUES, "needs_review"),
        ({"status": "failed", "error_log": [[], {}, {"message": 3}]}, State.QUEUED, "failed"),
        ({"status": "dead", "error_log": [None]}, State.FAILED, "dead"),
        (
            {"status": "processing", "segments": [{"id": 0, "status": "done", "qa_score": float("nan")}]},
            State.RUNNING,
            "processing",
        ),
    ],
)
def test_strange_bodies_never_raise(body: Any, state: State, vendor_status: str | None) -> None:
    status = normalize(body)
    assert isinstance(status, CanonicalStatus)
    assert (status.state, status.vendor_status) == (state, vendor_status)
    json.dumps(status.model_dump(mode="json"))  # always serialisable


def test_strange_processing_body_keeps_what_is_readable() -> None:
    status = normalize({"status": "processing", "current_step": 7, "segment_count": "x", "segments": "y"})
    assert (status.stage, status.progress) == (None, None)


def test_blocked_segments_with_unreadable_ids_still_give_issues() -> None:
    status = normalize(
        {"status": "completed_with_blocks", "segments": [{"id": {"x": 1}, "status": "blocked", "error": 5}]}
    )
    assert [i.model_dump() for i in status.issues] == [
        {"code": "blocked", "message": None, "target": None, "hint": None}
    ]


def test_provider_normalize_is_the_mapping() -> None:
    body = json.loads(DOC_STATUS_EXAMPLE)
    assert SegmentQAProvider().normalize(body) == normalize(body)


# -- registration ---------------------------------------------------------------------------------------------
def test_plugin_registers_the_provider() -> None:
    registered: list[object] = []
    plugin.register_providers(registered.append)
    assert len(registered) == 1 and isinstance(registered[0], SegmentQAProvider)


def test_entry_point_is_declared() -> None:
    (ep,) = [ep for ep in entry_points(group="gateway.providers") if ep.name == "segment_qa"]
    assert ep.value == "providers.segment_qa.plugin"
    assert ep.load() is plugin
