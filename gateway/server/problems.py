"""Errors as application/problem+json (RFC 9457) with the contract's extra `code`."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

PROBLEM_TYPE = "application/problem+json"

TITLES = {
    "unauthorized": "Missing or unknown API key",
    "not_found": "No such resource",
    "validation_error": "The request is not valid",
    "not_ready": "The job has not finished",
    "no_result": "The job finished without a result",
    "not_cancellable": "The job can no longer be cancelled",
    "unsupported": "The provider does not support this",
    "idempotency_mismatch": "Idempotency-Key reused with another body",
    "idempotency_in_progress": "A request with this Idempotency-Key is still in progress",
    "forbidden": "The tenant may not do this",
    "bad_request": "The request is not valid HTTP",
    "no_artifact": "The job has no artifact",
    "no_webhook": "The job has no webhook URL",
    "payload_too_large": "The request body is too large",
    "method_not_allowed": "Method not allowed",
    "upstream_error": "The vendor failed",
    "upstream_auth_failed": "The vendor refused the gateway's credentials",
    "upstream_rate_limited": "The vendor is rate limiting",
    "upstream_quota_exceeded": "The vendor account's quota is used up or needs payment",
    "budget_exceeded": "The tenant's budget is used up",
    "upstream_timeout": "The vendor did not answer in time",
    "unavailable": "The gateway cannot serve this now",
    "internal_error": "Internal error",
}


class Problem(Exception):
    """Raised by handlers; the error middleware turns it into a problem+json response."""

    def __init__(
        self, status: int, code: str, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    def response(self, instance: str | None = None) -> web.Response:
        body: dict[str, Any] = {
            "type": f"https://translation-gateway.dev/problems/{self.code}",
            "title": TITLES.get(self.code, self.code),
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return web.Response(
            status=self.status,
            body=json.dumps(body, default=str).encode(),
            content_type=PROBLEM_TYPE,
            headers=self.headers,
        )


def validation_problem(errors: list[dict[str, Any]], detail: str = "the request is not valid") -> Problem:
    return Problem(422, "validation_error", detail, errors=errors)


def not_found(what: str = "job") -> Problem:
    return Problem(404, "not_found", f"no such {what}")
