"""Tolerant models of CAMB.AI's translation bodies (vendor doc `camb-ai-translation-task-status.md`, contract 5).

Every field is optional and extra fields are kept: the vendor's answers are read with `gateway.tolerant.lenient`,
which drops invalid values instead of failing. Statuses stay plain strings, never an enum.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr


class _Vendor(BaseModel):
    model_config = ConfigDict(extra="allow")


class CambTaskCreated(_Vendor):
    """`POST /translate` answer."""

    task_id: str | None = None


class CambLanguage(_Vendor):
    """One item of `GET /source-languages` and `GET /target-languages` (strict: `true` or `"7"` is no id)."""

    id: StrictInt | None = None
    language: StrictStr | None = None
    short_name: StrictStr | None = None
