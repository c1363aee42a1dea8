"""The conformance case of the segment_qa provider (see gateway/testing/case.py)."""

from __future__ import annotations

from gateway.states import State
from gateway.testing.case import ConformanceCase

CASE = ConformanceCase(
    provider="segment_qa",
    valid_input={
        "kind": "text",
        "source_language": "de",
        "target_language": "en",
        "texts": ["Die Qualität unserer Produkte spricht für sich.", "Wir liefern pünktlich."],
    },
    # passes the provider's own checks (languages and texts are present) but the vendor refuses the type: 422
    invalid_input={"mode": "translation", "source_lang": "de", "target_lang": "en", "texts": "not a list"},
    status_patches=[
        ({"status": "queued", "current_step": None}, State.QUEUED),
        ({"status": "processing", "current_step": "translator"}, State.RUNNING),
        ({"status": "correcting", "current_step": "translator"}, State.RUNNING),
        ({"status": "completed", "current_step": None}, State.SUCCEEDED),
        (
            {
                "status": "completed_with_blocks",
                "current_step": None,
                "segment_count": 2,
                "segments": [
                    {"id": 0, "status": "blocked", "qa_score": None, "retry_count": 0, "error": "Markup conflict"},
                    {"id": 1, "status": "done", "qa_score": 94.0, "retry_count": 0, "error": None},
                ],
            },
            State.COMPLETED_WITH_ISSUES,
        ),
        ({"status": "needs_review", "current_step": None, "warning": "QA score below 85"}, State.COMPLETED_WITH_ISSUES),
        ({"status": "failed", "current_step": None, "error_log": ["translator worker timed out"]}, State.QUEUED),
        ({"status": "dead", "current_step": None, "error_log": ["retries exhausted"]}, State.FAILED),
    ],
    sim_job_id=lambda ref: ref["job_id"],
    unknown_ref={"job_id": "00000000-0000-4000-8000-000000000000"},
    finished_patch={"status": "completed", "current_step": None},
)
