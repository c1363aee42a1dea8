"""The Datafold DMA v2 provider's conformance case."""

from __future__ import annotations

from typing import Any

from gateway.states import State
from gateway.testing.case import ConformanceCase

PROJECT_ID = 4242


def _model(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "asset_id": f"asset-{name}",
        "asset_name": name,
        "datadiff_id": None,
        "failure_summary": None,
        "source_filename": f"models/{name}.sql",
        "source_sql": f"SELECT TOP 10 id, ISNULL(amount, 0) AS amount FROM dbo.{name}",
        "target_sql": f"SELECT id, COALESCE(amount, 0) AS amount FROM analytics.{name} LIMIT 10",
        "translation_status": status,
        **extra,
    }


VALID_MODELS = [
    _model("stg_orders", "valid_translation", datadiff_id=40001),
    _model("customer_revenue", "valid_translation", datadiff_id=40002),
]
INVALID_MODEL = _model(
    "invalid_payments",
    "invalid_translation",
    target_sql=None,
    failure_summary={
        "error_message": "Unsupported construct: CROSS APPLY dbo.fn_split_tags(t.tags)",
        "location": "models/invalid_payments.sql:6",
        "problem": "The agent gave up: the source uses a construct with no direct Snowflake equivalent",
        "reason": "resignation",
        "solution": "Rewrite the function as LATERAL FLATTEN or translate it by hand",
    },
)

CASE = ConformanceCase(
    provider="datafold",
    valid_input={"project_id": PROJECT_ID, "asset_paths": ["models/staging/stg_orders.sql"], "concurrency": 4},
    # the vendor answers 422: asset_paths must be a list of strings, concurrency an integer
    invalid_input={"project_id": PROJECT_ID, "asset_paths": "models/staging/stg_orders.sql", "concurrency": "lots"},
    status_patches=[
        ({"status": "waiting", "translated_models": None}, State.QUEUED),
        ({"status": "processing"}, State.RUNNING),
        ({"status": "needs_confirmation"}, State.ACTION_REQUIRED),
        ({"status": "needs_authentication"}, State.ACTION_REQUIRED),
        ({"status": "done", "translated_models": VALID_MODELS}, State.SUCCEEDED),
        ({"status": "done", "translated_models": [*VALID_MODELS, INVALID_MODEL]}, State.COMPLETED_WITH_ISSUES),
        ({"status": "failed", "translated_models": [INVALID_MODEL]}, State.FAILED),
        ({"status": "cancelled"}, State.CANCELLED),
    ],
    sim_job_id=lambda ref: ref["job_id"],
    unknown_ref={"project_id": PROJECT_ID, "job_id": "00000000-0000-4000-8000-000000000000"},
    finished_patch={"status": "done", "translated_models": VALID_MODELS},
)
