"""Datafold DMA v2 bodies as pydantic models, with every field of the vendor's OpenAPI schemas.

The response models are tolerant: every field is optional and extra fields are kept, so a status body
read with `gateway.tolerant.lenient` never fails. Enum-typed fields (job status, translation status,
failure reason) are plain strings here; the values the vendor documents are listed in the constants.
`ApiTranslateRequest` is typed as the vendor declares it, because the simulator validates requests with it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

#: JobStatus enum of the vendor doc
JOB_STATUSES = (
    "needs_confirmation",
    "needs_authentication",
    "waiting",
    "processing",
    "done",
    "failed",
    "cancelled",
)
#: ApiTranslationStatus enum of the vendor doc
TRANSLATION_STATUSES = (
    "no_translation_attempts",
    "validation_pending",
    "invalid_translation",
    "valid_translation",
)
VALID_TRANSLATION = "valid_translation"
#: ApiFailureReason enum of the vendor doc
FAILURE_REASONS = ("max_iterations", "tool_error", "resignation")


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class ApiFailureSummary(_Tolerant):
    """Structured failure summary with problem, error, and solution sections."""

    error_message: str | None = None
    location: str | None = None
    problem: str | None = None
    reason: str | None = None
    solution: str | None = None


class ApiTranslatedModel(_Tolerant):
    """Information about a translated model."""

    asset_id: str | None = None
    asset_name: str | None = None
    datadiff_id: int | None = None
    failure_summary: ApiFailureSummary | None = None
    source_filename: str | None = None
    source_sql: str | None = None
    target_sql: str | None = None
    translation_status: str | None = None


class ApiTranslateTask(_Tolerant):
    """Response for translation task: the answer to both submit and status requests."""

    status: str | None = None
    task_id: str | None = None
    translated_models: list[ApiTranslatedModel] | None = None


class ApiTranslateRequest(BaseModel):
    """Request to run translation pipeline (`POST .../translate/jobs`); every field is optional."""

    model_config = ConfigDict(extra="allow")

    asset_paths: list[str] | None = None
    concurrency: int = 12
    drop_unresolved: list[str] | None = None
    fail_fast: bool = False
    identity: dict[str, Any] | None = None
    include_unverified: list[str] | None = None
    max_iterations: int | None = None
    preserve_dbt_temp_dirs: bool = False
    recreate_all: bool = False
    stages: list[str] | None = None
    transform_group_ids: list[str] | None = None
