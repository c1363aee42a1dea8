"""What the HTTP API does with jobs: submit (with routes and idempotency), attach, cancel, and the Job shape."""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from gateway.budgets import Budgets
from gateway.errors import InputError, UnsupportedOperation, VendorError, VendorNotFound
from gateway.idempotency import KeyReservations
from gateway.inputs import SubmitInput, check_kind, parse_input
from gateway.metrics import Metrics
from gateway.models import Job
from gateway.provider import Provider
from gateway.refs import secret_values
from gateway.render import JobView, ViewCache, job_body, render_job
from gateway.routing import INPUT_LOC, Router, SubmitFailed
from gateway.shadows import ShadowSampler
from gateway.states import CanonicalStatus, JobError, State
from gateway.store.base import Idempotency, Store
from gateway.store.records import JobRecord
from gateway.vendor_http import VendorConnection
from gateway.watch.engine import Watcher

JOB_ID_PREFIX = "job_"
__all__ = ["INPUT_LOC", "Gateway", "SubmitFailed", "body_hash", "new_job_id"]


def new_job_id() -> str:
    return JOB_ID_PREFIX + secrets.token_hex(12)


def body_hash(body: Any) -> str:
    """A stable digest of a request body, for Idempotency-Key comparison."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class _Submit:
    """One submit request, checked."""

    tenant: str
    candidates: list[str]
    route: str | None
    input: dict[str, Any]
    typed: SubmitInput
    webhook_url: str | None
    metadata: dict[str, Any]


def _unknown_vendor_job() -> InputError:
    """What attach answers for a job the vendor does not know, and for one that is another tenant's."""
    return InputError("the vendor does not know this job", loc=["body", "vendor_ref"])


@dataclass
class Gateway:
    """The gateway's job operations, shared by the HTTP handlers and the watcher."""

    store: Store
    providers: dict[str, Provider]
    connections: dict[str, VendorConnection]
    watcher: Watcher
    metrics: Metrics
    #: Idempotency-Key reservations, on the same store
    reservations: KeyReservations
    #: submits along routes, and the watcher's fail-over
    router: Router
    #: the tenants' budgets
    budgets: Budgets
    #: which routed submits get a shadow run
    shadows: ShadowSampler
    views: ViewCache = field(default_factory=ViewCache)

    async def job(self, job_id: str, tenant: str | None = None) -> JobRecord | None:
        """The job's latest snapshot: from memory when this process watches it (or finished it lately), else from
        the store. None when there is no such job, or it is another tenant's (when `tenant` is given)."""
        job = self.watcher.snapshot(job_id)
        if job is None:
            return await self.store.get_job(job_id, tenant=tenant)
        return job if tenant is None or job.tenant == tenant else None

    def answer(self, job: JobRecord) -> tuple[JobView, bytes]:
        """The job's rendered view (cached per snapshot: its ETag) and its body now (`poll_after_s`, `eta_s`)."""
        view = self.views.view(job)
        return view, view.body(self.watcher.poll_after(job), self.watcher.clock.now)

    def render(self, job: JobRecord) -> Job:
        return render_job(job, self.watcher.poll_after(job), self.watcher.clock.now())

    def body(self, job: JobRecord) -> dict[str, Any]:
        """The Job as JSON-ready data, with the watcher's `poll_after_s` and `eta_s` counted from now."""
        return job_body(job, self.watcher.poll_after(job), self.watcher.clock.now())

    def provider(self, name: str, loc: str = "provider") -> Provider:
        if name not in self.connections:
            raise InputError(f"no configured provider named {name!r}", loc=["body", loc])
        return self.providers[name]

    async def submit(
        self,
        tenant: str,
        *,
        provider: str | None,
        route: str | None,
        input: dict[str, Any],
        webhook_url: str | None,
        metadata: dict[str, Any],
        idempotency: tuple[str, str] | None,
    ) -> tuple[JobRecord, bool]:
        """Create the vendor job (moving along a route on vendor failures) and store it; (job, created).

        With an Idempotency-Key (key, body hash) the key is reserved before any vendor is called: a request
        repeating an earlier one gets that job again (created False), one arriving while the first is still
        in flight waits for it (`IdempotencyInProgress` after the configured wait), neither reaches the vendor.
        """
        candidates = self._candidates(provider, route)
        for name in candidates:  # every check before any vendor is called
            check_kind(input, self.provider(name).capabilities.input_kinds, loc=INPUT_LOC)
        typed = parse_input(input, loc=INPUT_LOC)
        request = _Submit(tenant, candidates, route, input, typed, webhook_url, metadata)
        if idempotency is None:
            return await self._submit(request, None)
        key = (tenant, *idempotency)
        async with self.reservations.reserve(key) as earlier:
            if earlier is not None:
                return earlier, False
            return await self._submit(request, key)

    def _candidates(self, provider: str | None, route: str | None) -> list[str]:
        """The providers a submit may use, in order; InputError for an unknown provider or route."""
        if route is None:
            return [self.provider(provider or "").name]
        if route not in self.router.routes:
            raise InputError(f"no route named {route!r}", loc=["body", "route"])
        return self.router.routes[route].providers

    async def _submit(self, request: _Submit, idempotency: Idempotency | None) -> tuple[JobRecord, bool]:
        """Within the tenant's budget (BudgetExceeded before any vendor is called), submit along the candidates
        and store the job; a sampled routed job also gets its shadow run, started once it is stored."""
        taken = await self.budgets.admit(request.tenant, self.watcher.clock.now())
        try:
            spec = self.router.routes.get(request.route) if request.route is not None else None
            shadow = self.shadows.sampled(request.route, request.input)
            name, ref, attempts = await self.router.submit_along(
                request.candidates,
                request.typed,
                [],
                limit=spec.attempt_limit if spec else 1,
                failover=spec is not None,
            )
            keep = spec is not None and self.router.can_fail_over(spec)
            job, created = await self._create(
                request.tenant,
                name,
                ref,
                route=request.route,
                attempts=attempts if spec else [],
                webhook_url=request.webhook_url,
                metadata=request.metadata,
                idempotency=idempotency,
                sources=self.providers[name].source_texts(request.typed),
                input=self.router.seal_input(request.input) if keep else None,
                shadow=new_job_id() if shadow else None,
            )
        except BaseException:
            await self.budgets.release(taken)
            raise
        if not created:
            await self.budgets.release(taken)
        elif shadow is not None and job.shadow is not None:
            self.shadows.start(lambda: self._shadow_run(job, shadow, request), job.shadow)
        return job, created

    async def _shadow_run(self, primary: JobRecord, provider: str, request: _Submit) -> None:
        """Submit the primary's copy to the shadow provider and store it as the linked shadow job (a refused
        submit is stored too: a shadow job that failed at once)."""
        assert primary.shadow is not None
        try:
            name, ref, attempts = await self.router.submit_along([provider], request.typed, [], limit=1, failover=False)
        except SubmitFailed as exc:
            error = JobError(code=exc.error.problem_code, message=exc.error.message)
            status = CanonicalStatus(state=State.FAILED, error=error)
            name, ref, attempts = provider, {}, exc.attempts
        else:
            status = CanonicalStatus(state=State.QUEUED)
        await self._create(
            primary.tenant,
            name,
            ref,
            route=primary.route,
            attempts=attempts,
            webhook_url=None,
            metadata=primary.metadata,
            idempotency=None,
            sources=self.providers[name].source_texts(request.typed),
            job_id=primary.shadow,
            shadow_of=primary.id,
            status=status,
        )

    async def attach(
        self,
        tenant: str,
        *,
        provider: str,
        vendor_ref: dict[str, Any],
        webhook_url: str | None,
        metadata: dict[str, Any],
    ) -> tuple[JobRecord, bool]:
        """Adopt a job started at the vendor directly; the vendor must know it; (job, created).

        A vendor job the gateway already holds is this tenant's job again (created False) when the tenant
        holds it, and answers exactly as a job the vendor does not know when another tenant does (checked
        before the vendor is asked, and again with the vendor_ref the vendor's answer completes)."""
        chosen = self.provider(provider)
        ref = chosen.validate_ref(vendor_ref)  # private fields included: the caller knows them
        held = await self._held(tenant, chosen, ref)
        if held is not None:
            return held, False
        _, private = self.watcher.refs.split(ref, chosen.private_ref_fields)
        conn = self.connections[provider].with_secrets(secret_values(private))
        try:
            body = await chosen.fetch_status(conn, ref)
        except VendorNotFound as exc:
            raise _unknown_vendor_job() from exc
        except VendorError as exc:
            raise conn.scrubbed(exc) from None
        ref = chosen.refine_ref(ref, body)
        held = await self._held(tenant, chosen, ref)
        if held is not None:
            return held, False
        job, _ = await self._create(
            tenant,
            provider,
            ref,
            route=None,
            attempts=[],
            webhook_url=webhook_url,
            metadata=metadata,
            idempotency=None,
        )
        await self.watcher.poll_now(job.id)  # record what the vendor says now, and keep its result if finished
        return await self.job(job.id) or job, True

    async def _held(self, tenant: str, provider: Provider, ref: dict[str, Any]) -> JobRecord | None:
        """The tenant's job that is this vendor job, or None; another tenant's is an unknown vendor job.
        Compared on the ref's public fields (the ones stored in the clear)."""
        public, _ = self.watcher.refs.split(ref, provider.private_ref_fields)
        holders = await self.store.jobs_with_vendor_ref(provider.name, public)
        for job in holders:
            if job.tenant == tenant:
                return job
        if holders:
            raise _unknown_vendor_job()
        return None

    async def _create(
        self,
        tenant: str,
        provider: str,
        ref: dict[str, Any],
        *,
        route: str | None,
        attempts: list[dict[str, Any]],
        webhook_url: str | None,
        metadata: dict[str, Any],
        idempotency: Idempotency | None,
        sources: list[str] | None = None,
        input: str | None = None,
        shadow: str | None = None,
        job_id: str | None = None,
        shadow_of: str | None = None,
        status: CanonicalStatus | None = None,
    ) -> tuple[JobRecord, bool]:
        now = self.watcher.clock.now()
        public, sealed = self.watcher.refs.sealed_for(ref, self.providers[provider].private_ref_fields)
        record = JobRecord(
            id=job_id or new_job_id(),
            tenant=tenant,
            provider=provider,
            vendor_ref=public,
            private_ref=sealed,
            status=status or CanonicalStatus(state=State.QUEUED),
            created_at=now,
            updated_at=now,
            metadata=metadata,
            webhook_url=webhook_url,
            route=route,
            attempts=attempts,
            shadow=shadow,
            shadow_of=shadow_of,
        )
        job, created = await self.store.create_job(record, idempotency=idempotency, sources=sources, input=input)
        if created:
            if not job.terminal:
                self.watcher.watch(job)
            self.watcher.notifier.publish(job.id)  # the operator's live view and the tenant's event stream
            if job.webhook_url and self.watcher.on_event:
                self.watcher.on_event()  # version 1 is in the outbox: deliver it now
        return job, created

    async def cancel(self, job: JobRecord) -> JobRecord:
        """Ask the vendor to cancel; UnsupportedOperation when the provider cannot."""
        provider = self.providers[job.provider]
        if not provider.capabilities.cancel:
            raise UnsupportedOperation(f"{job.provider} cannot cancel jobs")
        ref, conn = self.watcher.vendor_io(job)
        try:
            await provider.cancel(conn, ref)
        except VendorError as exc:
            raise conn.scrubbed(exc) from None
        self.metrics.upstream.inc(provider=job.provider, operation="cancel", outcome="ok")
        await self.watcher.poll_now(job.id)
        return await self.job(job.id) or job
