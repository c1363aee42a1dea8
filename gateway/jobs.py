"""What the HTTP API does with jobs: submit (with routes and idempotency), attach, cancel, and the Job shape."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import InputError, UnsupportedOperation, VendorError, VendorNotFound
from gateway.idempotency import KeyReservations
from gateway.inputs import SubmitInput, check_kind, parse_input
from gateway.metrics import Metrics
from gateway.models import Job
from gateway.provider import Provider
from gateway.refs import secret_values
from gateway.render import JobView, ViewCache, job_body, render_job
from gateway.states import CanonicalStatus, State
from gateway.store.base import Idempotency, Store
from gateway.store.records import JobRecord
from gateway.vendor_http import VendorConnection
from gateway.watch.engine import Watcher

JOB_ID_PREFIX = "job_"
#: where a submit's input is in the request body (for error locations)
INPUT_LOC = ("body", "input")


def new_job_id() -> str:
    return JOB_ID_PREFIX + secrets.token_hex(12)


def body_hash(body: Any) -> str:
    """A stable digest of a request body, for Idempotency-Key comparison."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _unknown_vendor_job() -> InputError:
    """What attach answers for a job the vendor does not know, and for one that is another tenant's."""
    return InputError("the vendor does not know this job", loc=["body", "vendor_ref"])


class SubmitFailed(Exception):
    """Every provider of a submit failed; `error` is the last vendor error, `attempts` what was tried."""

    def __init__(self, error: VendorError, attempts: list[dict[str, Any]]) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts


@dataclass
class Gateway:
    """The gateway's job operations, shared by the HTTP handlers and the watcher."""

    store: Store
    providers: dict[str, Provider]
    connections: dict[str, VendorConnection]
    routes: dict[str, list[str]]
    watcher: Watcher
    metrics: Metrics
    #: Idempotency-Key reservations, on the same store
    reservations: KeyReservations
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
        return view, view.body(self.watcher.poll_after(job), self.watcher.clock.now())

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
        if idempotency is None:
            return await self._submit(tenant, candidates, route, typed, webhook_url, metadata, None)
        key = (tenant, *idempotency)
        async with self.reservations.reserve(key) as earlier:
            if earlier is not None:
                return earlier, False
            return await self._submit(tenant, candidates, route, typed, webhook_url, metadata, key)

    def _candidates(self, provider: str | None, route: str | None) -> list[str]:
        """The providers a submit may use, in order; InputError for an unknown provider or route."""
        if route is None:
            return [self.provider(provider or "").name]
        if route not in self.routes:
            raise InputError(f"no route named {route!r}", loc=["body", "route"])
        return self.routes[route]

    async def _submit(
        self,
        tenant: str,
        candidates: list[str],
        route: str | None,
        typed: SubmitInput,
        webhook_url: str | None,
        metadata: dict[str, Any],
        idempotency: Idempotency | None,
    ) -> tuple[JobRecord, bool]:
        attempts: list[dict[str, Any]] = []
        last_error: VendorError | None = None
        for name in candidates:
            chosen = self.providers[name]
            started = time.monotonic()
            try:
                ref = await chosen.submit(self.connections[name], typed)
            except VendorError as exc:
                outcome = type(exc).__name__
                self.metrics.upstream.inc(provider=name, operation="submit", outcome=outcome)
                attempts.append({"provider": name, "outcome": exc.problem_code, "detail": exc.message})
                last_error = exc
                if route is None or not exc.failover:
                    raise SubmitFailed(exc, attempts) from exc
                continue
            finally:
                self.metrics.upstream_latency.observe(time.monotonic() - started, provider=name)
            self.metrics.upstream.inc(provider=name, operation="submit", outcome="ok")
            attempts.append({"provider": name, "outcome": "accepted"})
            return await self._create(
                tenant,
                name,
                ref,
                route=route,
                attempts=attempts if route else [],
                webhook_url=webhook_url,
                metadata=metadata,
                idempotency=idempotency,
                sources=chosen.source_texts(typed),
            )
        assert last_error is not None
        raise SubmitFailed(last_error, attempts)

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
    ) -> tuple[JobRecord, bool]:
        now = self.watcher.clock.now()
        public, sealed = self.watcher.refs.sealed_for(ref, self.providers[provider].private_ref_fields)
        record = JobRecord(
            id=new_job_id(),
            tenant=tenant,
            provider=provider,
            vendor_ref=public,
            private_ref=sealed,
            status=CanonicalStatus(state=State.QUEUED),
            created_at=now,
            updated_at=now,
            metadata=metadata,
            webhook_url=webhook_url,
            route=route,
            attempts=attempts,
        )
        job, created = await self.store.create_job(record, idempotency=idempotency, sources=sources)
        if created:
            self.watcher.watch(job)
            self.watcher.notifier.publish(job.id)  # the operator's live view learns of the new job
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
