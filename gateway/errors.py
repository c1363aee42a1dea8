"""Typed vendor failures. Each maps to one of the contract's problem codes (section 2)."""

from __future__ import annotations

from typing import Any


class VendorError(Exception):
    """A vendor request that did not give a usable answer. Never carries a secret."""

    problem_code = "upstream_error"
    http_status = 502
    #: whether a submit that failed this way may move on to the next provider of a route
    failover = True

    def __init__(self, message: str, *, provider: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status = status

    def __str__(self) -> str:
        where = f"{self.provider}: " if self.provider else ""
        return f"{where}{self.message}"


class VendorAuthError(VendorError):
    """The vendor refused our credentials (401/403)."""

    problem_code = "upstream_auth_failed"
    http_status = 502
    failover = True


class VendorNotFound(VendorError):
    """The vendor does not know this job (404)."""

    problem_code = "not_found"
    http_status = 404
    failover = False


class VendorConflict(VendorError):
    """The vendor answered 409 (e.g. result not ready, duplicate content)."""

    problem_code = "upstream_error"
    http_status = 502
    failover = False

    def __init__(self, message: str, *, body: Any = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.body = body


class VendorValidationError(VendorError):
    """The vendor rejected the request body (400/422); `errors` is a list of {loc, msg}."""

    problem_code = "validation_error"
    http_status = 422
    failover = False

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = errors or [{"loc": ["input"], "msg": message}]


class _RetryLater(VendorError):
    """A failure the vendor may say when to retry after (`Retry-After`, in seconds; None when it did not)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class VendorQuotaExceeded(_RetryLater):
    """The vendor account's quota is used up or the vendor wants payment (402, and whatever unusual status a
    provider maps here, e.g. 456). A route moves on to its next provider; a watched job stays as it was,
    marked stale with this reason, and is polled again on the backoff ladder."""

    problem_code = "upstream_quota_exceeded"
    http_status = 402
    failover = True


#: the earlier name of VendorQuotaExceeded (HTTP 402 "payment required" is the same condition)
VendorPaymentRequired = VendorQuotaExceeded


class VendorRateLimited(_RetryLater):
    """The vendor asked us to slow down (429)."""

    problem_code = "upstream_rate_limited"
    http_status = 503
    failover = True


class VendorTimeout(VendorError):
    """The vendor did not answer in time."""

    problem_code = "upstream_timeout"
    http_status = 504
    failover = True


class VendorConnectionError(VendorError):
    """The vendor could not be reached, or the connection broke (refused, reset, closed mid-answer)."""

    problem_code = "upstream_error"
    http_status = 502
    failover = True


class VendorServerError(_RetryLater):
    """The vendor answered 5xx."""

    problem_code = "upstream_error"
    http_status = 502
    failover = True


class VendorMalformed(VendorError):
    """The vendor answered with a body we cannot read (not JSON, wrong shape)."""

    problem_code = "upstream_error"
    http_status = 502
    failover = True


class ResultGone(VendorError):
    """The finished job's result can never be read again: the one-time download was already taken, or the
    vendor purged it. Raised by `fetch_result` or `open_artifact`; the gateway ends the job at once with the
    issue `result_unavailable` instead of retrying."""

    problem_code = "result_unavailable"
    http_status = 502
    failover = False


class UnsupportedOperation(Exception):
    """The provider cannot do this (e.g. cancel where the vendor has no cancel endpoint)."""


class InputError(ValueError):
    """The caller's input cannot be sent to this provider; `errors` as in VendorValidationError."""

    def __init__(self, message: str, *, loc: list[str | int] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = [{"loc": loc or ["input"], "msg": message}]

    @classmethod
    def many(cls, errors: list[dict[str, Any]], message: str) -> InputError:
        """One error carrying several `{loc, msg}` entries."""
        exc = cls(message)
        exc.errors = errors
        return exc
