"""Datafold DMA v2 job status -> canonical status (contract section 1.1, table "Datafold DMA v2")."""

from __future__ import annotations

from typing import Any

from gateway.states import Action, CanonicalStatus, Issue, JobError, State
from gateway.tolerant import lenient, never_raises, read_status
from providers.datafold.models import VALID_TRANSLATION, ApiTranslatedModel

MAPPING: dict[str, State] = {
    "waiting": State.QUEUED,
    "processing": State.RUNNING,
    "needs_confirmation": State.ACTION_REQUIRED,
    "needs_authentication": State.ACTION_REQUIRED,
    "done": State.SUCCEEDED,
    "failed": State.FAILED,
    "cancelled": State.CANCELLED,
}

MAPPING_NOTES: dict[str, str] = {
    "needs_confirmation": 'action.kind = "confirm"',
    "needs_authentication": 'action.kind = "authenticate"',
    "done": (
        "succeeded if every translated model is valid_translation (or there are none), else completed_with_issues "
        "with one issue per model that is not valid_translation: code = its translation_status, target = asset_name, "
        "message = failure_summary.problem (or error_message), hint = failure_summary.solution"
    ),
    "failed": 'error.code = "vendor_error", message from the models\' failure summaries when present',
}

#: issue code for a translated model whose translation_status is missing or not a string
UNKNOWN_TRANSLATION_STATUS = "unknown_translation_status"
_MAX_MESSAGE = 2000

_ACTIONS = {
    "needs_confirmation": Action(
        kind="confirm", message="Datafold waits for the translation job to be confirmed before it starts"
    ),
    "needs_authentication": Action(
        kind="authenticate", message="Datafold waits for authentication before it can go on with the translation job"
    ),
}


def translated_models(body: Any) -> list[ApiTranslatedModel | None]:
    """The body's translated models in order; an entry that is not an object at all is None."""
    raw = body.get("translated_models") if isinstance(body, dict) else None
    if not isinstance(raw, list):
        return []
    return [_read_model(item) for item in raw]


def _read_model(item: Any) -> ApiTranslatedModel | None:
    try:
        return lenient(ApiTranslatedModel, item)
    except RecursionError:  # a plugin model of its own may recurse; lenient itself never raises
        return None


def has_translated_models(body: Any) -> bool:
    """True when the body carries a list of translated models (possibly empty)."""
    return isinstance(body, dict) and isinstance(body.get("translated_models"), list)


def is_valid(model: ApiTranslatedModel | None) -> bool:
    return model is not None and model.translation_status == VALID_TRANSLATION


def _summary_message(model: ApiTranslatedModel) -> str | None:
    summary = model.failure_summary
    if summary is None:
        return None
    return summary.problem or summary.error_message or None


def model_issue(model: ApiTranslatedModel | None) -> Issue | None:
    """The issue for one translated model that is not `valid_translation`; None for a valid one."""
    if is_valid(model):
        return None
    if model is None:
        return Issue(code=UNKNOWN_TRANSLATION_STATUS, message="Datafold reported a translated model that is unreadable")
    code = model.translation_status or UNKNOWN_TRANSLATION_STATUS
    message = _summary_message(model) or f"translation status is {code}"
    hint = model.failure_summary.solution if model.failure_summary is not None else None
    return Issue(code=code, message=message, target=model.asset_name, hint=hint or None)


def model_issues(body: Any) -> list[Issue]:
    """One issue per translated model of the body that is not `valid_translation`."""
    return [issue for model in translated_models(body) if (issue := model_issue(model)) is not None]


def _failure_message(body: Any) -> str:
    parts = []
    for model in translated_models(body):
        if model is None:
            continue
        text = _summary_message(model)
        if text:
            parts.append(f"{model.asset_name}: {text}" if model.asset_name else text)
    if not parts:
        return "Datafold reported the translation job as failed"
    message = "; ".join(parts)
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


@never_raises
def normalize(body: Any) -> CanonicalStatus:
    """Map one ApiTranslateTask body to the canonical status. Never raises."""
    status, state = read_status(body, MAPPING)
    if status is None or state is State.UNKNOWN:
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=status)
    if status == "done":
        issues = model_issues(body)
        if issues:
            return CanonicalStatus(state=State.COMPLETED_WITH_ISSUES, vendor_status=status, issues=issues)
        return CanonicalStatus(state=State.SUCCEEDED, vendor_status=status)
    if status == "failed":
        error = JobError(code="vendor_error", message=_failure_message(body), retryable=False)
        return CanonicalStatus(state=state, vendor_status=status, error=error)
    if status in _ACTIONS:
        return CanonicalStatus(state=state, vendor_status=status, action=_ACTIONS[status].model_copy())
    return CanonicalStatus(state=state, vendor_status=status)
