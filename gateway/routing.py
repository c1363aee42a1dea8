"""Routes (contract section 4): submitting along a route's providers, and job-level fail-over.

A submit tries the route's providers in order and moves on when the vendor refuses it for a reason that is not
the caller's. Once a vendor has accepted the job, a vendor job that ends `failed` with one of the route's
`failover_on` error codes is submitted again to the route's next provider, under the same gateway job id: the
job goes back to `queued` as its next version (never a terminal state in between), `provider` names the current
vendor, and `attempts` lists every vendor attempt. `max_attempts` bounds the attempts (submits refused at the
vendor included) and `deadline_s` ends a job that has not finished in time (`deadline_exceeded`).

Each attempt in `attempts`: `attempt` (1-based), `provider`, `outcome` (`accepted` while it runs, the problem code
of a submit the vendor refused, `failed` for a vendor job the job moved on from; rendered as the job's state once
the last attempt ends), `error` ({code, message} or null), `vendor_ref` (public fields only), `submitted_at`,
`ended_at`, and `version` (the job version it started at)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.clock import Clock
from gateway.config import RouteConfig
from gateway.errors import InputError, VendorError
from gateway.inputs import SubmitInput, parse_input
from gateway.metrics import Metrics
from gateway.provider import Provider
from gateway.refs import RefSealer, SealError, secret_values
from gateway.states import CanonicalStatus, JobError, State
from gateway.store.base import LeaseLost, Store
from gateway.store.records import JobRecord
from gateway.vendor_http import VendorConnection

log = logging.getLogger("gateway.routing")

ACCEPTED = "accepted"
FAILED_OVER = "failed"
DEADLINE_EXCEEDED = "deadline_exceeded"
#: where a submit's input is in the request body (for error locations)
INPUT_LOC = ("body", "input")


class SubmitFailed(Exception):
    """Every provider of a submit failed; `error` is the last vendor error, `attempts` what was tried."""

    def __init__(self, error: VendorError, attempts: list[dict[str, Any]]) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def deadline_of(job: JobRecord, route: RouteConfig | None) -> datetime | None:
    """When the routed job fails if it has not finished; None without a deadline."""
    if route is None or route.deadline_s is None or job.shadow_of is not None:
        return None
    return job.created_at + timedelta(seconds=route.deadline_s)


def deadline_status(job: JobRecord, route: RouteConfig) -> CanonicalStatus:
    return CanonicalStatus(
        state=State.FAILED,
        vendor_status=job.status.vendor_status,
        error=JobError(
            code=DEADLINE_EXCEEDED,
            message=f"the job did not finish within the route's deadline of {route.deadline_s:g} s",
        ),
    )


def ended_attempts(job: JobRecord, ended: CanonicalStatus, at: datetime) -> list[dict[str, Any]]:
    """The job's attempts with the current one ended in `ended` (its vendor_ref as it is now)."""
    attempts = [dict(a) for a in job.attempts]
    if attempts and attempts[-1].get("outcome") == ACCEPTED:
        error = ended.error.model_dump(include={"code", "message"}) if ended.error else None
        attempts[-1].update(outcome=FAILED_OVER, error=error, ended_at=iso(at), vendor_ref=dict(job.vendor_ref))
    return attempts


@dataclass
class Router:
    """Submits along routes and fails routed jobs over; shared by the HTTP submit and the watcher."""

    store: Store
    providers: dict[str, Provider]
    connections: dict[str, VendorConnection]
    routes: dict[str, RouteConfig]
    metrics: Metrics
    refs: RefSealer
    clock: Clock

    def route_of(self, job: JobRecord) -> RouteConfig | None:
        """The route a job fails over along (none for unrouted jobs and shadow runs)."""
        if job.route is None or job.shadow_of is not None:
            return None
        return self.routes.get(job.route)

    def can_fail_over(self, route: RouteConfig) -> bool:
        return len(route.providers) > 1 and route.attempt_limit > 1 and bool(route.failover_on)

    async def submit_along(
        self,
        candidates: list[str],
        typed: SubmitInput,
        attempts: list[dict[str, Any]],
        *,
        limit: int,
        failover: bool,
        version: int = 1,
    ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
        """Submit to the first candidate that accepts: (provider, its whole vendor_ref, attempts with every try
        appended). A refusal moves on when `failover` and the error is not the caller's, while fewer than `limit`
        attempts are made; else SubmitFailed with the attempts so far."""
        attempts = list(attempts)
        last: VendorError | None = None
        for name in candidates:
            if len(attempts) >= limit:
                break
            chosen = self.providers[name]
            at = self.clock.now()
            started = time.monotonic()
            try:
                ref = await chosen.submit(self.connections[name], typed)
            except VendorError as exc:
                self.metrics.upstream.inc(provider=name, operation="submit", outcome=type(exc).__name__)
                attempts.append(
                    {
                        "attempt": len(attempts) + 1,
                        "provider": name,
                        "outcome": exc.problem_code,
                        "error": {"code": exc.problem_code, "message": exc.message},
                        "vendor_ref": None,
                        "submitted_at": iso(at),
                        "ended_at": iso(self.clock.now()),
                        "version": version,
                    }
                )
                last = exc
                if not failover or not exc.failover:
                    raise SubmitFailed(exc, attempts) from exc
                continue
            finally:
                self.metrics.upstream_latency.observe(time.monotonic() - started, provider=name)
            self.metrics.upstream.inc(provider=name, operation="submit", outcome="ok")
            public, _ = self.refs.split(ref, chosen.private_ref_fields)
            attempts.append(
                {
                    "attempt": len(attempts) + 1,
                    "provider": name,
                    "outcome": ACCEPTED,
                    "error": None,
                    "vendor_ref": public,
                    "submitted_at": iso(at),
                    "ended_at": None,
                    "version": version,
                }
            )
            return name, ref, attempts
        if last is None:
            raise RuntimeError("no provider left to submit to")
        raise SubmitFailed(last, attempts)

    def next_providers(self, job: JobRecord, route: RouteConfig) -> list[str]:
        """The route's providers after the job's current one."""
        if job.provider not in route.providers:
            return []
        return route.providers[route.providers.index(job.provider) + 1 :]

    async def fail_over(self, job: JobRecord, ended: CanonicalStatus) -> tuple[JobRecord | None, list[dict[str, Any]]]:
        """Move a routed job whose vendor job ended in `ended` on to its route's next provider. (the job at its
        next attempt, its attempts) when moved; (None, attempts) when it ends here: no fail-over for this error,
        no provider or attempt left, the deadline passed, or every remaining vendor refused (those tries are in
        the attempts to record with the ending)."""
        route = self.route_of(job)
        now = self.clock.now()
        if (
            route is None
            or ended.state is not State.FAILED
            or ended.error is None
            or ended.error.code not in route.failover_on
        ):
            return None, job.attempts
        attempts = ended_attempts(job, ended, now)
        deadline = deadline_of(job, route)
        candidates = self.next_providers(job, route)
        if not candidates or len(attempts) >= route.attempt_limit or (deadline is not None and now >= deadline):
            return None, attempts
        typed = await self._input(job)
        if typed is None:
            return None, attempts
        try:
            name, ref, attempts = await self.submit_along(
                candidates, typed, attempts, limit=route.attempt_limit, failover=True, version=job.version + 1
            )
        except SubmitFailed as exc:
            log.warning("job %s: fail-over found no vendor to take it (%s)", job.id, exc.error.problem_code)
            return None, exc.attempts
        public, sealed = self.refs.sealed_for(ref, self.providers[name].private_ref_fields)
        try:
            moved = await self.store.next_attempt(
                job.id,
                ended=ended,
                provider=name,
                vendor_ref=public,
                private_ref=sealed,
                attempts=attempts,
                at=self.clock.now(),
            )
        except LeaseLost:  # another replica holds the job now and fails it over itself: undo this vendor job
            await self._withdraw(name, ref)
            raise
        log.info("job %s failed over from %s to %s (attempt %d)", job.id, job.provider, name, moved.attempt)
        return moved, attempts

    async def _withdraw(self, provider: str, ref: dict[str, Any]) -> None:
        """Cancel a vendor job no gateway job will own (best effort: a provider that cannot cancel leaves it)."""
        chosen = self.providers[provider]
        if not chosen.capabilities.cancel:
            return
        _, private = self.refs.split(ref, chosen.private_ref_fields)
        conn = self.connections[provider].with_secrets(secret_values(private))
        try:
            await chosen.cancel(conn, ref)
        except VendorError as exc:
            log.warning(
                "a vendor job %s started for a fail-over could not be cancelled: %s",
                provider,
                conn.scrubbed(exc).message,
            )

    async def _input(self, job: JobRecord) -> SubmitInput | None:
        """The job's canonical input as kept at submit, or None (not kept, or its seal cannot be opened)."""
        sealed = await self.store.get_input(job.id)
        if sealed is None:
            log.warning("job %s: its input was not kept; it cannot fail over", job.id)
            return None
        try:
            raw = self.refs.open(sealed)
        except SealError as exc:
            log.error("job %s: its input cannot be read (%s); it cannot fail over", job.id, exc)
            return None
        try:
            return parse_input(raw.get("input", {}), loc=INPUT_LOC)
        except InputError as exc:  # it passed at submit; a gateway of another version may judge otherwise
            log.error("job %s: its kept input is no longer valid (%s); it cannot fail over", job.id, exc)
            return None

    def seal_input(self, input: dict[str, Any]) -> str | None:
        """The input to keep for a fail-over (sealed like private vendor_ref fields: encrypted with a store key)."""
        return self.refs.seal({"input": input})
