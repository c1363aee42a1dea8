"""The asynchronous client of the gateway's HTTP API (aiohttp): one method per operation, typed answers."""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from gateway.client.errors import StreamNotSupported
from gateway.client.http import Transport
from gateway.client.operations import OPERATIONS, Op
from gateway.client.sse import read_events
from gateway.client.waiting import Follower
from gateway.models import Job, Result
from gateway.server.schemas import (
    DeliveryLog,
    Health,
    JobList,
    OperatorJob,
    OperatorJobDetail,
    OperatorJobList,
    ProviderHealth,
    ProviderHealthList,
    ProviderInfo,
    ProviderList,
    Transition,
    TransitionList,
    WebhookDelivery,
    WebhookDeliveryList,
)
from gateway.server.usage_schemas import UsageReport

DEFAULT_URL = "http://127.0.0.1:8080"
#: an event stream may be silent this long (the server sends a keep-alive every 15 s) before it counts as dead
STREAM_READ_TIMEOUT_S = 45.0
#: how much longer than the asked wait a long poll may take before it counts as dead
LONG_POLL_SLACK_S = 15.0
CHUNK = 64 * 1024


def _when(value: datetime | str | None) -> str | None:
    """A period bound as the server takes it: a day or an RFC 3339 date-time with its offset."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("give an aware datetime (with its offset), or a date as YYYY-MM-DD")
        return value.isoformat().replace("+00:00", "Z")
    return value


def _op(op_id: str) -> Op:
    return OPERATIONS[op_id]


def _add_delivery(body: dict[str, Any], webhook_url: str | None, metadata: dict[str, Any] | None) -> None:
    """A job body's optional webhook_url and metadata, each only when given."""
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    if metadata:
        body["metadata"] = metadata


def new_idempotency_key() -> str:
    return "idem-" + uuid.uuid4().hex


def text_input(source_language: str, target_language: str, texts: list[str]) -> dict[str, Any]:
    """The canonical text input (contract section 2)."""
    return {"kind": "text", "source_language": source_language, "target_language": target_language, "texts": texts}


def document_input(source_language: str, target_language: str, path: str | Path) -> dict[str, Any]:
    """The canonical document input of a file on disk (contract section 2)."""
    path = Path(path)
    return {
        "kind": "document",
        "source_language": source_language,
        "target_language": target_language,
        "filename": path.name,
        "content_base64": base64.b64encode(path.read_bytes()).decode("ascii"),
    }


class AsyncClient:
    """`async with AsyncClient(url, key) as gw: job = await gw.submit(...); job = await gw.wait(job.id)`.

    Every error answer raises a `gateway.client.errors.ProblemError` subclass carrying the problem body;
    an unreachable gateway raises `TransportError`. Reads, and submits (which carry an Idempotency-Key,
    one made up when none is given), are retried on 503/504 and broken connections."""

    def __init__(
        self,
        base_url: str | None = None,
        key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.http = Transport(
            base_url or os.environ.get("GATEWAY_URL") or DEFAULT_URL,
            key if key is not None else os.environ.get("GATEWAY_KEY"),
            timeout=timeout,
            retries=retries,
            session=session,
        )

    @property
    def base_url(self) -> str:
        return self.http.base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.close()

    # -- jobs -----------------------------------------------------------------------------------
    async def submit(
        self,
        input: dict[str, Any],
        *,
        provider: str | None = None,
        route: str | None = None,
        webhook_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job to a provider or a route. The Idempotency-Key (made up when not given) makes the
        retries on 503/504 and broken connections safe: the gateway creates the job at most once."""
        body: dict[str, Any] = {"input": input}
        if provider is not None:
            body["provider"] = provider
        if route is not None:
            body["route"] = route
        _add_delivery(body, webhook_url, metadata)
        key = idempotency_key or new_idempotency_key()
        answer = await self.http.call(_op("submit"), body=body, headers={"Idempotency-Key": key}, retry=True)
        return Job.model_validate(answer)

    async def submit_text(self, texts: list[str], *, source_language: str, target_language: str, **options: Any) -> Job:
        """Submit the canonical text input; `options` as `submit` takes them (provider, route, webhook_url, ...)."""
        return await self.submit(text_input(source_language, target_language, texts), **options)

    async def submit_document(
        self, path: str | Path, *, source_language: str, target_language: str, **options: Any
    ) -> Job:
        """Submit a file on disk as the canonical document input; `options` as `submit` takes them."""
        return await self.submit(document_input(source_language, target_language, path), **options)

    async def attach(
        self,
        provider: str,
        vendor_ref: dict[str, Any],
        *,
        webhook_url: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Job:
        """Adopt a job started at the vendor directly (not retried: each call adopts anew)."""
        body: dict[str, Any] = {"provider": provider, "vendor_ref": vendor_ref}
        _add_delivery(body, webhook_url, metadata)
        return Job.model_validate(await self.http.call(_op("attach"), body=body))

    async def get(self, job_id: str, *, wait: float | None = None, version: int | None = None) -> Job:
        """The job; with `wait` (and the `version` you have) a long poll that answers on the next change."""
        timeout = None
        if wait is not None:
            timeout = aiohttp.ClientTimeout(total=wait + LONG_POLL_SLACK_S, sock_connect=10.0)
        answer = await self.http.call(
            _op("get_job"),
            path={"job_id": job_id},
            query={"wait": wait, "version": version},
            retry=True,
            client_timeout=timeout,
        )
        return Job.model_validate(answer)

    async def list_jobs(
        self,
        *,
        state: str | None = None,
        provider: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> JobList:
        """One page of the tenant's jobs, newest first; `next_cursor` asks for the next."""
        query = {"state": state, "provider": provider, "limit": limit, "cursor": cursor}
        return JobList.model_validate(await self.http.call(_op("list_jobs"), query=query, retry=True))

    async def usage(
        self, *, since: datetime | str | None = None, until: datetime | str | None = None, group_by: str | None = None
    ) -> UsageReport:
        """The tenant's usage ledger totalled per provider (default), route or day, for attempts that ended in
        [since, until) (default: the 30 days before now); an aware datetime or `YYYY-MM-DD` (a UTC day)."""
        query = {"from": _when(since), "to": _when(until), "group_by": group_by}
        return UsageReport.model_validate(await self.http.call(_op("usage"), query=query, retry=True))

    async def iter_jobs(
        self, *, state: str | None = None, provider: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[Job]:
        """Every job of the tenant, newest first, following the cursors page by page."""
        cursor: str | None = None
        while True:
            page = await self.list_jobs(state=state, provider=provider, limit=page_size, cursor=cursor)
            for job in page.data:
                yield job
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def cancel(self, job_id: str) -> Job:
        answer = await self.http.call(_op("cancel"), path={"job_id": job_id}, retry=True)
        return Job.model_validate(answer)

    async def transitions(self, job_id: str) -> list[Transition]:
        answer = await self.http.call(_op("transitions"), path={"job_id": job_id}, retry=True)
        return TransitionList.model_validate(answer).data

    async def result(self, job_id: str) -> Result:
        """The finished job's result (`NotReady` while it runs, `NoResult` when it failed or was cancelled)."""
        return Result.model_validate(await self.http.call(_op("result"), path={"job_id": job_id}, retry=True))

    async def artifact(self, job_id: str, dest: str | Path) -> Path:
        """Stream the output file to `dest` (a file, or a directory where the server's filename is used);
        the file appears whole or not at all."""
        dest = Path(dest)
        async with self.http.stream(_op("artifact"), path={"job_id": job_id}) as resp:
            if dest.is_dir():
                dest = dest / (_filename(resp) or f"{job_id}.bin")
            partial = dest.with_name(dest.name + ".part")
            try:
                with partial.open("wb") as out:
                    async for chunk in resp.content.iter_chunked(CHUNK):
                        out.write(chunk)
                partial.replace(dest)
            finally:
                partial.unlink(missing_ok=True)
        return dest

    # -- following a job --------------------------------------------------------------------------
    async def events(self, job_id: str, *, last_event_id: int | None = None) -> AsyncIterator[Job]:
        """The job's server-sent events as Jobs, one per version, until the server ends the stream (after a
        terminal version, or at its shutdown). With `last_event_id`, the versions after it."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        async for data in self._stream(_op("events"), {"job_id": job_id}, headers):
            yield Job.model_validate(data)

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (a deadline for the whole wait, not one call)
        on_update: Callable[[Job], None] | None = None,
    ) -> Job:
        """Follow the job until it is terminal and return it; `on_update` sees every version on the way.

        Follows the event stream, resuming with Last-Event-ID after a dropped connection or a server restart;
        falls back to long polls where the stream is not available, and to polling at the job's
        `poll_after_s` where long polls are not either. `WaitTimeout` after `timeout` seconds."""
        return await Follower(self, job_id, timeout=timeout, on_update=on_update).run()

    async def _stream(self, op: Op, path: dict[str, str], headers: dict[str, str]) -> AsyncIterator[Any]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=STREAM_READ_TIMEOUT_S)
        async with self.http.stream(
            op, path=path, headers=headers, client_timeout=timeout, accept="text/event-stream"
        ) as r:
            if not r.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise StreamNotSupported(f"{op.path} answered {r.headers.get('Content-Type')!r}, not an event stream")
            async for event in read_events(r):
                yield json.loads(event.data)

    # -- webhooks and the tenant's event stream (docs/webhooks.md) -----------------------------------------
    async def deliveries(self, job_id: str) -> DeliveryLog:
        """The job's webhook delivery log: each event, every try, the next try or the final outcome."""
        answer = await self.http.call(_op("job_deliveries"), path={"job_id": job_id}, retry=True)
        return DeliveryLog.model_validate(answer)

    async def retry_delivery(self, event_id: str) -> WebhookDelivery:
        """Send one webhook event again now (re-enables an endpoint disabled by 410)."""
        answer = await self.http.call(_op("retry_delivery"), path={"event_id": event_id}, retry=True)
        return WebhookDelivery.model_validate(answer)

    async def replay_deliveries(self, job_id: str, *, from_version: int = 1) -> list[WebhookDelivery]:
        """Send the job's webhook events from `from_version` on again, in order."""
        answer = await self.http.call(
            _op("replay_deliveries"), path={"job_id": job_id}, body={"from_version": from_version}, retry=True
        )
        return WebhookDeliveryList.model_validate(answer).data

    async def tenant_events(
        self, *, last_event_id: int | None = None, provider: str | None = None, state: str | None = None
    ) -> AsyncIterator[tuple[int, Job]]:
        """Every transition of the tenant's jobs as (event id, the Job at that version), in order, until the
        server ends the stream; pass the last id received as `last_event_id` to resume without a gap."""
        headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=STREAM_READ_TIMEOUT_S)
        query = {"provider": provider, "state": state}
        async with self.http.stream(
            _op("tenant_events"), query=query, headers=headers, client_timeout=timeout, accept="text/event-stream"
        ) as resp:
            async for event in read_events(resp):
                if event.event == "job" and event.id is not None:
                    yield int(event.id), Job.model_validate(json.loads(event.data))

    # -- providers and the service ------------------------------------------------------------------
    async def providers(self) -> list[ProviderInfo]:
        return ProviderList.model_validate(await self.http.call(_op("list_providers"), retry=True)).providers

    async def health(self) -> Health:
        return Health.model_validate(await self.http.call(_op("healthz"), retry=True))

    async def ready(self) -> Health:
        return Health.model_validate(await self.http.call(_op("readyz")))

    async def metrics(self) -> str:
        return str(await self.http.call(_op("metrics"), retry=True))

    async def openapi(self) -> dict[str, Any]:
        answer = await self.http.call(_op("openapi"), retry=True)
        return answer if isinstance(answer, dict) else {}

    # -- operator routes (need the operator key) -------------------------------------------------------
    async def operator_jobs(
        self,
        *,
        tenant: str | None = None,
        provider: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> OperatorJobList:
        query = {"tenant": tenant, "provider": provider, "state": state, "limit": limit, "cursor": cursor}
        return OperatorJobList.model_validate(await self.http.call(_op("operator_jobs"), query=query, retry=True))

    async def operator_job(self, job_id: str) -> OperatorJobDetail:
        answer = await self.http.call(_op("operator_job"), path={"job_id": job_id}, retry=True)
        return OperatorJobDetail.model_validate(answer)

    async def operator_providers(self) -> list[ProviderHealth]:
        answer = await self.http.call(_op("operator_providers"), retry=True)
        return ProviderHealthList.model_validate(answer).providers

    async def operator_events(self) -> AsyncIterator[OperatorJob]:
        """Every change of any job, as it happens, until the server ends the stream."""
        async for data in self._stream(_op("operator_events"), {}, {}):
            yield OperatorJob.model_validate(data)


def _filename(resp: aiohttp.ClientResponse) -> str | None:
    """The Content-Disposition filename, reduced to a plain file name (never a path)."""
    name = resp.content_disposition.filename if resp.content_disposition else None
    if not name:
        return None
    name = os.path.basename(name.replace("\\", "/"))
    return name if name not in ("", ".", "..") else None
