"""The canonical lifecycle: states, the canonical status a provider reports, and the transition rules."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class State(StrEnum):
    """Every job, whatever its vendor, is in exactly one of these states."""

    QUEUED = "queued"
    RUNNING = "running"
    ACTION_REQUIRED = "action_required"
    SUCCEEDED = "succeeded"
    COMPLETED_WITH_ISSUES = "completed_with_issues"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def has_result(self) -> bool:
        """A terminal state whose job has a usable result."""
        return self in (State.SUCCEEDED, State.COMPLETED_WITH_ISSUES)


TERMINAL_STATES = frozenset({State.SUCCEEDED, State.COMPLETED_WITH_ISSUES, State.FAILED, State.CANCELLED})


#: the longest vendor estimate the gateway repeats (30 days); a longer one is no estimate
MAX_ETA_S = 30 * 24 * 3600.0


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobError(_Shape):
    code: str
    message: str
    retryable: bool = False


class Action(_Shape):
    kind: str
    message: str | None = None


class StaleReason(_Shape):
    """Why a job's snapshot is stale: the problem code of the vendor failure (e.g. `upstream_quota_exceeded`)."""

    code: str
    message: str | None = None


class Issue(_Shape):
    code: str
    message: str | None = None
    target: str | None = None
    hint: str | None = None


class CanonicalStatus(_Shape):
    """What a provider makes of one vendor status body (contract section 1 and 7)."""

    state: State
    terminal: bool = False
    vendor_status: str | None = None
    stage: str | None = None
    progress: int | None = Field(default=None, ge=0, le=100)
    #: the vendor's own estimate of the seconds left until the job finishes; a change alone is no transition
    eta_s: float | None = Field(default=None, ge=0, le=MAX_ETA_S)
    error: JobError | None = None
    action: Action | None = None
    issues: list[Issue] = Field(default_factory=list)

    def model_post_init(self, __context: Any) -> None:
        # terminal is derived from state, never set independently
        object.__setattr__(self, "terminal", self.state.terminal)

    def transition_key(self) -> tuple[Any, ...]:
        """The fields whose change is a transition: state, stage, whole-percent progress, vendor status."""
        return (self.state, self.stage, self.progress, self.vendor_status)


def is_transition(previous: CanonicalStatus | None, current: CanonicalStatus) -> bool:
    """True when `current` differs from `previous` in a way that bumps the job's version."""
    return previous is None or previous.transition_key() != current.transition_key()


def is_regression(previous: CanonicalStatus | None, current: CanonicalStatus) -> bool:
    """A vendor that reports a non-terminal state after a terminal one: an anomaly, never applied."""
    return previous is not None and previous.terminal and not current.terminal


def clamp_progress(value: Any) -> int | None:
    """A vendor's progress as a whole percent in 0..100, or None when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value):  # NaN, or Infinity (json.loads accepts both)
        return None
    return max(0, min(100, int(value)))


def clamp_eta(value: Any) -> float | None:
    """A vendor's estimate of the seconds left, as a number in 0..MAX_ETA_S, or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if value < 0 or value > MAX_ETA_S:
        return None
    return float(value)
