"""The client's errors: every problem+json answer of the gateway as a typed exception carrying its body."""

from __future__ import annotations

from typing import Any

from gateway.models import Job


class GatewayError(Exception):
    """Base class of every error the client raises."""


class TransportError(GatewayError):
    """The gateway could not be reached, or the connection broke before a whole answer arrived."""


class StreamNotSupported(GatewayError):
    """The answer to an event-stream request was not an event stream (e.g. a proxy in the way)."""


class WaitTimeout(GatewayError):
    """`wait` gave up before the job was terminal; `job` is the last version seen."""

    def __init__(self, job: Job, seconds: float) -> None:
        super().__init__(f"{job.id} is still {job.state.value} after {seconds:g} s")
        self.job = job


class ProblemError(GatewayError):
    """An error answer (RFC 9457 problem+json with the gateway's `code`); `problem` is the whole body."""

    def __init__(self, status: int, problem: dict[str, Any], *, retry_after: float | None = None) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code") or f"http_{status}")
        self.detail = problem.get("detail") or problem.get("title")
        self.retry_after = retry_after
        super().__init__(f"HTTP {status} {self.code}" + (f": {self.detail}" if self.detail else ""))

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The `{loc, msg}` list of a validation error (empty otherwise)."""
        found = self.problem.get("errors")
        return found if isinstance(found, list) else []

    @property
    def job(self) -> Job | None:
        """The job a 409 names (`not_ready`, `no_result`, `not_cancellable`), when the body carries it."""
        body = self.problem.get("job")
        return Job.model_validate(body) if isinstance(body, dict) else None


class Unauthorized(ProblemError):
    """401: the key is missing or not one the gateway knows (or not the kind this route needs)."""


class NotFound(ProblemError):
    """404: no such job (another tenant's job answers the same), route or artifact."""


class NoArtifact(NotFound):
    """404 `no_artifact`: the job has no output file."""


class ValidationFailed(ProblemError):
    """422: the request is not valid; `errors` says where and why."""


class PayloadTooLarge(ProblemError):
    """413: the request body is larger than the gateway accepts."""


class Conflict(ProblemError):
    """409: the request cannot be done in the job's current state."""


class NotReady(Conflict):
    """409 `not_ready`: the job has not finished."""


class NoResult(Conflict):
    """409 `no_result`: the job ended failed or cancelled."""


class NotCancellable(Conflict):
    """409 `not_cancellable`: the job is already terminal."""


class Unsupported(Conflict):
    """409 `unsupported`: the provider cannot do this."""


class IdempotencyMismatch(Conflict):
    """409 `idempotency_mismatch`: the Idempotency-Key was used with another request body."""


class PaymentRequired(ProblemError):
    """402: the vendor account's quota is used up or needs payment (`upstream_quota_exceeded`)."""


class BudgetExceeded(PaymentRequired):
    """402 `budget_exceeded`: the tenant's budget is used up; `budget` is the current spend and limits."""

    @property
    def budget(self) -> dict[str, Any]:
        found = self.problem.get("budget")
        return found if isinstance(found, dict) else {}


class UpstreamError(ProblemError):
    """502: the vendor failed or refused the gateway's credentials."""


class Unavailable(ProblemError):
    """503: the vendor is rate limiting or the gateway cannot serve now (`retry_after` when told)."""


class UpstreamTimeout(ProblemError):
    """504: the vendor did not answer in time."""


class ServerError(ProblemError):
    """500 or another unexpected status."""


BY_CODE: dict[str, type[ProblemError]] = {
    "no_artifact": NoArtifact,
    "not_ready": NotReady,
    "no_result": NoResult,
    "not_cancellable": NotCancellable,
    "unsupported": Unsupported,
    "idempotency_mismatch": IdempotencyMismatch,
    "budget_exceeded": BudgetExceeded,
}
BY_STATUS: dict[int, type[ProblemError]] = {
    401: Unauthorized,
    402: PaymentRequired,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    502: UpstreamError,
    503: Unavailable,
    504: UpstreamTimeout,
}


def problem_error(status: int, body: Any, *, retry_after: float | None = None) -> ProblemError:
    """The typed exception of an error answer; a body that is not a problem object is kept under `body`."""
    problem = body if isinstance(body, dict) else {"status": status, "body": body}
    kind = BY_CODE.get(str(problem.get("code"))) or BY_STATUS.get(status, ServerError)
    return kind(status, problem, retry_after=retry_after)
