"""A thin synchronous wrapper of `AsyncClient`: the same methods, run on the wrapper's own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from gateway.client.aio import AsyncClient
from gateway.models import Job, Result
from gateway.server import schemas
from gateway.server.usage_schemas import UsageReport

T = TypeVar("T")


class Client:
    """`with Client(url, key) as gw: job = gw.wait(gw.submit_text(["Hello"], ...).id)`; not for use inside a
    running event loop (use `AsyncClient` there)."""

    def __init__(self, base_url: str | None = None, key: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self.aio = AsyncClient(base_url, key, **options)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self.aio.close())
            self._loop.close()

    def _run(self, work: Awaitable[T]) -> T:
        return self._loop.run_until_complete(work)

    def _iterate(self, source: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(anext(source))
                except StopAsyncIteration:
                    return
        finally:
            if not self._loop.is_closed():
                self._run(source.aclose())  # type: ignore[attr-defined]

    # jobs
    def submit(self, input: dict[str, Any], **options: Any) -> Job:
        return self._run(self.aio.submit(input, **options))

    def submit_text(self, texts: list[str], **options: Any) -> Job:
        return self._run(self.aio.submit_text(texts, **options))

    def submit_document(self, path: str | Path, **options: Any) -> Job:
        return self._run(self.aio.submit_document(path, **options))

    def attach(self, provider: str, vendor_ref: dict[str, Any], **options: Any) -> Job:
        return self._run(self.aio.attach(provider, vendor_ref, **options))

    def get(self, job_id: str, *, wait: float | None = None, version: int | None = None) -> Job:
        return self._run(self.aio.get(job_id, wait=wait, version=version))

    def list_jobs(self, **filters: Any) -> schemas.JobList:
        return self._run(self.aio.list_jobs(**filters))

    def iter_jobs(self, **filters: Any) -> Iterator[Job]:
        return self._iterate(self.aio.iter_jobs(**filters))

    def cancel(self, job_id: str) -> Job:
        return self._run(self.aio.cancel(job_id))

    def usage(
        self, *, since: datetime | str | None = None, until: datetime | str | None = None, group_by: str | None = None
    ) -> UsageReport:
        return self._run(self.aio.usage(since=since, until=until, group_by=group_by))

    def transitions(self, job_id: str) -> list[schemas.Transition]:
        return self._run(self.aio.transitions(job_id))

    def result(self, job_id: str) -> Result:
        return self._run(self.aio.result(job_id))

    def artifact(self, job_id: str, dest: str | Path) -> Path:
        return self._run(self.aio.artifact(job_id, dest))

    def events(self, job_id: str, *, last_event_id: int | None = None) -> Iterator[Job]:
        return self._iterate(self.aio.events(job_id, last_event_id=last_event_id))

    def wait(self, job_id: str, *, timeout: float | None = None, on_update: Callable[[Job], None] | None = None) -> Job:
        return self._run(self.aio.wait(job_id, timeout=timeout, on_update=on_update))

    # providers and the service
    def providers(self) -> list[schemas.ProviderInfo]:
        return self._run(self.aio.providers())

    def health(self) -> schemas.Health:
        return self._run(self.aio.health())

    def ready(self) -> schemas.Health:
        return self._run(self.aio.ready())

    def metrics(self) -> str:
        return self._run(self.aio.metrics())

    def openapi(self) -> dict[str, Any]:
        return self._run(self.aio.openapi())

    # webhooks and the tenant's event stream
    def deliveries(self, job_id: str) -> schemas.DeliveryLog:
        return self._run(self.aio.deliveries(job_id))

    def retry_delivery(self, event_id: str) -> schemas.WebhookDelivery:
        return self._run(self.aio.retry_delivery(event_id))

    def replay_deliveries(self, job_id: str, *, from_version: int = 1) -> list[schemas.WebhookDelivery]:
        return self._run(self.aio.replay_deliveries(job_id, from_version=from_version))

    def tenant_events(self, **options: Any) -> Iterator[tuple[int, Job]]:
        return self._iterate(self.aio.tenant_events(**options))

    # operator routes
    def operator_jobs(self, **filters: Any) -> schemas.OperatorJobList:
        return self._run(self.aio.operator_jobs(**filters))

    def operator_job(self, job_id: str) -> schemas.OperatorJobDetail:
        return self._run(self.aio.operator_job(job_id))

    def operator_providers(self) -> list[schemas.ProviderHealth]:
        return self._run(self.aio.operator_providers())

    def operator_events(self) -> Iterator[schemas.OperatorJob]:
        return self._iterate(self.aio.operator_events())
