"""Datafold DMA v2 status mapping (contract section 1.1): every row, the documented example, strange bodies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.states import CanonicalStatus, State
from providers.datafold.client import DatafoldProvider
from providers.datafold.mapping import MAPPING, MAPPING_NOTES, UNKNOWN_TRANSLATION_STATUS, normalize
from providers.datafold.models import JOB_STATUSES, ApiTranslateTask

PROVIDER = DatafoldProvider()

# The "Successful Response" example of GET .../translate/jobs/{job_id}, verbatim from
# https://docs.datafold.com/api-reference/dma_v2/check-status-of-a-dma-translation-job
# (the schema-only vendor doc in shared/vendor-docs carries no example payload).
DOCS_EXAMPLE: dict[str, Any] = {
    "status": "needs_confirmation",
    "task_id": "<string>",
    "translated_models": [
        {
            "asset_id": "<string>",
            "asset_name": "<string>",
            "translation_status": "no_translation_attempts",
            "datadiff_id": 123,
            "failure_summary": {
                "error_message": "<string>",
                "problem": "<string>",
                "reason": "max_iterations",
                "solution": "<string>",
                "location": "<string>",
            },
            "source_filename": "<string>",
            "source_sql": "<string>",
            "target_sql": "<string>",
        }
    ],
}


def task(status: str, *models: dict[str, Any]) -> dict[str, Any]:
    """A status body (an ApiTranslateTask) with these translated models, in order."""
    return {"status": status, "task_id": "t", "translated_models": list(models)}


def model(name: str, status: Any, summary: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "asset_id": f"id-{name}",
        "asset_name": name,
        "datadiff_id": None,
        "failure_summary": summary,
        "source_filename": f"models/{name}.sql",
        "source_sql": "SELECT TOP 5 id FROM dbo.t",
        "target_sql": "SELECT id FROM analytics.t LIMIT 5",
        "translation_status": status,
        **extra,
    }


SUMMARY = {
    "error_message": "SQL compilation error: invalid identifier 'AMOUNT_USD'",
    "location": "models/orders.sql:4",
    "problem": "A column of the source does not exist in the target table",
    "reason": "tool_error",
    "solution": "Migrate the amount_usd column or map it to amount",
}


#: the contract's table (section 1.1, "Datafold DMA v2"): each vendor status and its state
CONTRACT_TABLE = [
    ("waiting", State.QUEUED),
    ("processing", State.RUNNING),
    ("needs_confirmation", State.ACTION_REQUIRED),
    ("needs_authentication", State.ACTION_REQUIRED),
    ("done", State.SUCCEEDED),
    ("failed", State.FAILED),
    ("cancelled", State.CANCELLED),
]


def test_mapping_table_is_the_contract_table() -> None:
    assert dict(MAPPING) == dict(CONTRACT_TABLE)
    assert set(MAPPING) == set(JOB_STATUSES)
    assert PROVIDER.mapping == MAPPING
    assert "completed_with_issues" in MAPPING_NOTES["done"]
    assert PROVIDER.mapping_notes == MAPPING_NOTES
    assert PROVIDER.describe()["mapping"]["done"] == "succeeded"


@pytest.mark.parametrize(("status", "state"), CONTRACT_TABLE)
def test_each_vendor_status(status: str, state: State) -> None:
    got = normalize({"status": status, "task_id": "t-1", "translated_models": None})
    assert got.state is state
    assert got.terminal is state.terminal
    assert got.vendor_status == status
    assert got.stage is None and got.progress is None
    assert got.issues == []
    assert PROVIDER.normalize({"status": status, "task_id": "t-1"}) == got


@pytest.mark.parametrize(
    ("status", "kind"), [("needs_confirmation", "confirm"), ("needs_authentication", "authenticate")]
)
def test_action_required_has_the_action_kind(status: str, kind: str) -> None:
    got = normalize({"status": status, "task_id": "t"})
    assert got.action is not None and got.action.kind == kind
    assert got.action.message
    assert got.error is None


@pytest.mark.parametrize("status", ["waiting", "processing", "done", "cancelled"])
def test_no_action_and_no_error_outside_their_rows(status: str) -> None:
    got = normalize({"status": status, "task_id": "t"})
    assert got.action is None and got.error is None


@pytest.mark.parametrize(
    "models",
    [None, [], [model("a", "valid_translation")], [model("a", "valid_translation"), model("b", "valid_translation")]],
    ids=["null", "empty", "one-valid", "two-valid"],
)
def test_done_with_only_valid_models_or_none_succeeds(models: Any) -> None:
    got = normalize({"status": "done", "task_id": "t", "translated_models": models})
    assert got.state is State.SUCCEEDED and got.terminal
    assert got.issues == []


def test_done_without_translated_models_key_succeeds() -> None:
    assert normalize({"status": "done", "task_id": "t"}).state is State.SUCCEEDED


@pytest.mark.parametrize("bad", ["invalid_translation", "validation_pending", "no_translation_attempts"])
def test_done_with_a_model_that_is_not_valid_completes_with_issues(bad: str) -> None:
    body = task("done", model("orders", "valid_translation"), model("payments", bad, SUMMARY))
    got = normalize(body)
    assert got.state is State.COMPLETED_WITH_ISSUES and got.terminal
    assert got.error is None
    assert len(got.issues) == 1
    issue = got.issues[0]
    assert issue.code == bad
    assert issue.target == "payments"
    assert issue.message == SUMMARY["problem"]
    assert issue.hint == SUMMARY["solution"]


def test_done_gives_one_issue_per_model_that_is_not_valid_in_order() -> None:
    body = task(
        "done",
        model("a", "invalid_translation", SUMMARY),
        model("b", "valid_translation"),
        model("c", "validation_pending"),
    )
    got = normalize(body)
    assert [(i.code, i.target) for i in got.issues] == [("invalid_translation", "a"), ("validation_pending", "c")]


def test_issue_message_falls_back_to_error_message_then_to_the_status() -> None:
    no_problem = {k: v for k, v in SUMMARY.items() if k != "problem"}
    body = {
        "status": "done",
        "translated_models": [model("a", "invalid_translation", no_problem), model("b", "invalid_translation")],
    }
    first, second = normalize(body).issues
    assert first.message == SUMMARY["error_message"] and first.hint == SUMMARY["solution"]
    assert second.message == "translation status is invalid_translation"
    assert second.hint is None and second.target == "b"


def test_failed_takes_its_message_from_the_failure_summaries() -> None:
    other = {**SUMMARY, "problem": "The translation did not converge", "reason": "max_iterations"}
    body = task(
        "failed",
        model("orders", "invalid_translation", SUMMARY),
        model("ok", "valid_translation"),
        model("items", "invalid_translation", other),
    )
    got = normalize(body)
    assert got.state is State.FAILED and got.terminal
    assert got.error is not None
    assert got.error.code == "vendor_error"
    assert got.error.retryable is False
    assert got.error.message == f"orders: {SUMMARY['problem']}; items: The translation did not converge"


@pytest.mark.parametrize("models", [None, [], [model("a", "valid_translation")], "garbage"])
def test_failed_without_summaries_has_a_generic_message(models: Any) -> None:
    got = normalize({"status": "failed", "task_id": "t", "translated_models": models})
    assert got.state is State.FAILED
    assert got.error is not None and got.error.code == "vendor_error"
    assert got.error.message == "Datafold reported the translation job as failed"


def test_failed_message_is_capped() -> None:
    long = {**SUMMARY, "problem": "x" * 5000}
    got = normalize({"status": "failed", "translated_models": [model("a", "invalid_translation", long)]})
    assert got.error is not None and len(got.error.message) <= 2000


def test_docs_example_verbatim() -> None:
    body = copy.deepcopy(DOCS_EXAMPLE)
    got = normalize(body)
    assert got == CanonicalStatus(
        state=State.ACTION_REQUIRED,
        vendor_status="needs_confirmation",
        action=got.action,
    )
    assert got.action is not None and got.action.kind == "confirm"
    assert body == DOCS_EXAMPLE  # normalize does not touch its input
    task = ApiTranslateTask.model_validate(DOCS_EXAMPLE)
    assert task.translated_models is not None
    assert task.translated_models[0].failure_summary is not None
    assert task.translated_models[0].failure_summary.reason == "max_iterations"
    assert task.translated_models[0].datadiff_id == 123


def test_docs_example_shape_when_done() -> None:
    body = {**copy.deepcopy(DOCS_EXAMPLE), "status": "done"}
    got = normalize(body)
    assert got.state is State.COMPLETED_WITH_ISSUES
    assert [(i.code, i.target, i.message, i.hint) for i in got.issues] == [
        ("no_translation_attempts", "<string>", "<string>", "<string>")
    ]


# -- strange bodies ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Done", "DONE", "", " done", "running", "sim_unknown_status", "completed"])
def test_unknown_status_string_is_unknown_and_kept(status: str) -> None:
    got = normalize(task(status, model("a", "invalid_translation")))
    assert got.state is State.UNKNOWN and not got.terminal
    assert got.vendor_status == status
    assert got.issues == [] and got.error is None and got.action is None


@pytest.mark.parametrize("status", [None, 1, 0, True, 2.5, [], ["done"], {"value": "done"}])
def test_non_string_status_is_unknown_without_vendor_status(status: Any) -> None:
    got = normalize({"status": status, "task_id": "t"})
    assert got.state is State.UNKNOWN
    assert got.vendor_status is None


@pytest.mark.parametrize("body", [[], [{"status": "done"}], "done", "", 0, 42, 1.5, True, None, b"done"])
def test_non_dict_json_is_unknown(body: Any) -> None:
    got = normalize(body)
    assert got.state is State.UNKNOWN
    assert got.vendor_status is None
    assert PROVIDER.normalize(body) == got


@pytest.mark.parametrize("body", [{}, {"task_id": "t"}, {"translated_models": []}])
def test_missing_status_is_unknown(body: dict[str, Any]) -> None:
    got = normalize(body)
    assert got.state is State.UNKNOWN and got.vendor_status is None


def test_null_everywhere() -> None:
    nulls = dict.fromkeys(model("a", None), None)
    nulls["failure_summary"] = dict.fromkeys(SUMMARY, None)
    assert normalize({"status": None, "task_id": None, "translated_models": None}).state is State.UNKNOWN
    got = normalize({"status": "done", "task_id": None, "translated_models": [nulls]})
    assert got.state is State.COMPLETED_WITH_ISSUES
    (issue,) = got.issues
    assert issue.code == UNKNOWN_TRANSLATION_STATUS
    assert issue.target is None and issue.hint is None and issue.message
    failed = normalize({"status": "failed", "task_id": None, "translated_models": [nulls, None]})
    assert failed.state is State.FAILED and failed.error is not None


def test_extra_fields_are_ignored() -> None:
    body = {
        "status": "done",
        "task_id": "t",
        "eta": "soon",
        "progress": 50,
        "translated_models": [model("a", "valid_translation", extra_field={"nested": [1, 2]})],
    }
    got = normalize(body)
    assert got.state is State.SUCCEEDED and got.progress is None and got.issues == []


@pytest.mark.parametrize("models", ["garbage", 5, {"asset_name": "a"}, True])
def test_done_with_translated_models_not_a_list_counts_as_none(models: Any) -> None:
    assert normalize({"status": "done", "translated_models": models}).state is State.SUCCEEDED


@pytest.mark.parametrize("item", [1, "x", None, [], True])
def test_done_with_an_unreadable_model_entry_completes_with_issues(item: Any) -> None:
    got = normalize({"status": "done", "translated_models": [model("a", "valid_translation"), item]})
    assert got.state is State.COMPLETED_WITH_ISSUES
    assert [i.code for i in got.issues] == [UNKNOWN_TRANSLATION_STATUS]


@pytest.mark.parametrize(
    "bad_model",
    [
        model("a", 3),
        model(5, "invalid_translation", "not a summary"),
        model("a", "invalid_translation", {"problem": 7, "solution": ["x"], "reason": 1}),
        model("a", ["valid_translation"], datadiff_id="x", source_sql=1, target_sql={}),
    ],
)
def test_done_with_wrongly_typed_model_fields_never_raises(bad_model: dict[str, Any]) -> None:
    got = normalize({"status": "done", "translated_models": [bad_model]})
    assert got.state is State.COMPLETED_WITH_ISSUES
    (issue,) = got.issues
    assert isinstance(issue.code, str) and issue.code


def test_wrongly_typed_but_valid_model_still_counts_as_valid() -> None:
    good = model("a", "valid_translation", datadiff_id="not-an-int", source_sql=3, failure_summary=[])
    assert normalize({"status": "done", "translated_models": [good]}).state is State.SUCCEEDED


def test_deeply_nested_and_huge_bodies_do_not_raise() -> None:
    deep: Any = "done"
    for _ in range(2000):
        deep = {"x": deep}
    assert normalize({"status": "done", "translated_models": [deep]}).state is State.COMPLETED_WITH_ISSUES
    many = [model(f"m{i}", "invalid_translation", SUMMARY) for i in range(500)]
    got = normalize({"status": "done", "translated_models": many})
    assert got.state is State.COMPLETED_WITH_ISSUES and len(got.issues) == 500
