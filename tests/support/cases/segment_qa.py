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

#: the vendor documentation's examples, verbatim (segment-qa-job-status-and-result.txt)
DOC_STATUS_EXAMPLE = """{
"job_id": "550e8400-e29b-41d4-a716-446655440000",
"status": "processing",
"segment_count": 5,
"segments": [
{ "id": 0, "status": "translated", "qa_score": 92.5, "retry_count": 0, "error": null },
{ "id": 1, "status": "pending", "qa_score": null, "retry_count": 0, "error": null }
],
"token_usage": { "input_tokens": 1200, "output_tokens": 800 },
"cost_eur": 0.0014,
"error_log": [],
"created_at": "2026-03-06T10:00:00+00:00",
"started_at": "2026-03-06T10:00:05+00:00",
"finished_at": null,
"current_step": "translator",
"source_review_enabled": false
}"""

DOC_RESULT_EXAMPLE = """{
"job_id": "550e8400-e29b-41d4-a716-446655440000",
"status": "completed",
"translation": "The quality of our products speaks for itself.",
"segments": [
{
"id": 0,
"source": "Die Qualität unserer Produkte spricht für sich.",
"translation": "The quality of our products speaks for itself.",
"qa_score": 96.5,
"status": "done"
}
],
"cost_eur": 0.0014,
"token_usage": {
"input": 1200,
"output": 800,
"cache_read": 400,
"cache_write": 0,
"total": 2000
},
"word_count": { "source": 8, "target": 9 },
"qa_score": 96.5,
"warning": null,
"delivery_notes": []
}"""
