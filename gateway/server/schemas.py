"""The gateway's own request bodies: strict, unknown fields refused."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SubmitRequest(_Strict):
    provider: str | None = Field(default=None, min_length=1, max_length=100)
    route: str | None = Field(default=None, min_length=1, max_length=100)
    input: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_target(self) -> SubmitRequest:
        if (self.provider is None) == (self.route is None):
            raise ValueError("give exactly one of provider or route")
        return self


class AttachRequest(_Strict):
    provider: str = Field(min_length=1, max_length=100)
    vendor_ref: dict[str, Any]
    webhook_url: str | None = Field(default=None, min_length=1, max_length=2048)
    metadata: dict[str, Any] = Field(default_factory=dict)


def pydantic_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic ValidationError -> the contract's [{loc, msg}] with loc rooted at body."""
    return [{"loc": ["body", *[p for p in e["loc"]]], "msg": e["msg"]} for e in exc.errors()]
