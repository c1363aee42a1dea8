"""The conformance case of the CAMB.AI provider (see gateway/testing/case.py)."""

from __future__ import annotations

from gateway.states import State
from gateway.testing.case import ConformanceCase

CASE = ConformanceCase(
    provider="camb",
    # en-us -> de-de, native CAMB ids
    valid_input={"source_language": 1, "target_language": 31, "texts": ["Hello world", "How are you?"]},
    # well-formed, so the provider sends it; the vendor answers 422 (no target language with this id)
    invalid_input={"source_language": 1, "target_language": 999999, "texts": ["Hello world"]},
    status_patches=[
        ({"status": "PENDING", "run_id": None}, State.RUNNING),
        ({"status": "SUCCESS", "run_id": 880001}, State.SUCCEEDED),
        ({"status": "ERROR", "run_id": None}, State.FAILED),
        ({"status": "TIMEOUT", "run_id": None}, State.FAILED),
        ({"status": "PAYMENT_REQUIRED", "run_id": None}, State.FAILED),
    ],
    sim_job_id=lambda ref: ref["task_id"],
    unknown_ref={"task_id": "00000000-0000-4000-8000-000000000000"},
    finished_patch={"status": "SUCCESS", "run_id": 880002},
    has_auth=True,
)
