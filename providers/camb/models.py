"""Tolerant models of CAMB.AI's translation bodies (vendor doc `camb-ai-translation-task-status.md`, contract 5).

Every field is optional and extra fields are kept: the vendor's answers are read with `gateway.tolerant.lenient`,
which drops invalid values instead of failing. Statuses stay plain strings, never an enum.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="allow")


class CambTaskStatus(_Vendor):
    """`GET /translate/{task_id}`: the OpenAPI schema `OrchestratorPipelineResult`."""

    #: one of SUCCESS, PENDING, TIMEOUT, ERROR, PAYMENT_REQUIRED (schema `TaskStatus`), kept as given
    status: str | None = None
    #: integer or null; set once the status is SUCCESS, used for `/translation-result/{run_id}`
    run_id: int | None = None


class CambTranslateRequest(_Vendor):
    """`POST /translate` body (contract section 5)."""

    source_language: int | None = None
    target_language: int | None = None
    texts: list[str] | None = None
    #: 1 or 2
    formality: int | None = None
    #: 0, 1, 2 or 9
    gender: int | None = None
    age: int | None = None


class CambTaskCreated(_Vendor):
    """`POST /translate` answer."""

    task_id: str | None = None


class CambTranslationResult(_Vendor):
    """`GET /translation-result/{run_id}` answer: the translations in the order of the input texts.

    The client reads `texts` item by item itself (a lenient parse would drop a bad item and shift the order)."""

    texts: list[str] | None = None


class CambLanguage(_Vendor):
    """One item of `GET /source-languages` and `GET /target-languages` (strict: `true` or `"7"` is no id)."""

    id: StrictInt | None = None
    language: StrictStr | None = None
    short_name: StrictStr | None = None


class CambValidationErrorItem(_Vendor):
    """One item of a FastAPI 422 body (schema `ValidationError`)."""

    loc: list[str | int] | None = None
    msg: str | None = None
    type: str | None = None


class CambValidationError(_Vendor):
    """A 422 body (schema `HTTPValidationError`); `detail` is a string on 401/404 answers."""

    detail: list[CambValidationErrorItem] | str | None = None
