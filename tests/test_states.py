"""The canonical lifecycle: eight states, terminal flags, transition and stickiness rules."""

import pytest

from gateway.states import (
    TERMINAL_STATES,
    CanonicalStatus,
    Issue,
    JobError,
    State,
    clamp_progress,
    is_regression,
    is_transition,
)


def test_eight_states_with_their_terminal_flags():
    assert {s.value for s in State} == {
        "queued",
        "running",
        "action_required",
        "succeeded",
        "completed_with_issues",
        "failed",
        "cancelled",
        "unknown",
    }
    assert TERMINAL_STATES == {State.SUCCEEDED, State.COMPLETED_WITH_ISSUES, State.FAILED, State.CANCELLED}
    assert not State.UNKNOWN.terminal and not State.ACTION_REQUIRED.terminal


@pytest.mark.parametrize("state", list(State))
def test_terminal_is_derived_from_state_and_cannot_be_forged(state):
    assert CanonicalStatus(state=state, terminal=not state.terminal).terminal is state.terminal


@pytest.mark.parametrize(
    "change",
    [{"state": State.SUCCEEDED}, {"stage": "qa"}, {"progress": 41}, {"vendor_status": "PROCESSING"}],
)
def test_each_field_change_is_a_transition(change):
    before = CanonicalStatus(state=State.RUNNING, vendor_status="processing", stage="translator", progress=40)
    after = before.model_copy(update=change)
    assert is_transition(before, after)


def test_same_snapshot_and_first_snapshot():
    status = CanonicalStatus(state=State.RUNNING, vendor_status="processing", progress=40)
    assert not is_transition(status, status.model_copy())
    assert is_transition(None, status)


@pytest.mark.parametrize(
    "change",
    [
        {"error": JobError(code="vendor_error", message="translator worker timed out", retryable=True)},
        {"issues": [Issue(code="blocked", message="Markup conflict", target="0")]},
        {
            "error": JobError(code="timeout", message="retrying"),
            "issues": [Issue(code="low_confidence", target="1"), Issue(code="needs_review")],
        },
    ],
    ids=["error", "issues", "both"],
)
def test_error_or_issue_change_alone_is_not_a_transition(change):
    before = CanonicalStatus(
        state=State.QUEUED,
        vendor_status="failed",
        error=JobError(code="vendor_error", message="first attempt failed"),
        issues=[Issue(code="blocked", target="3")],
    )
    after = before.model_copy(update=change)
    assert after != before  # the error or the issues did change
    assert not is_transition(before, after)


def test_terminal_is_sticky():
    done = CanonicalStatus(state=State.SUCCEEDED, vendor_status="done")
    back = CanonicalStatus(state=State.RUNNING, vendor_status="processing")
    assert is_regression(done, back)
    assert not is_regression(back, done)
    assert not is_regression(None, back)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (45, 45),
        (45.9, 45),
        (-3, 0),
        (250, 100),
        ("45", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
    ],
)
def test_clamp_progress(raw, expected):
    assert clamp_progress(raw) == expected


def test_progress_out_of_range_is_rejected_by_the_model():
    with pytest.raises(ValueError):
        CanonicalStatus(state=State.RUNNING, progress=101)
