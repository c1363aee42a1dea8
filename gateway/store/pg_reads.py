"""The PostgreSQL store's listings (mixed into `PostgresStore`, as `SqliteReads` is into the SQLite store): a
tenant's jobs and the operator's view across tenants, counts per provider and state, a job's webhook events, and
the source texts kept per job."""

from __future__ import annotations

import json
from typing import Any

from gateway.states import State
from gateway.store.codec import dumps
from gateway.store.pg_db import PgDatabase
from gateway.store.records import JobRecord, OutboxEvent
from gateway.store.sqlite_rows import JOB_COLUMNS, OUTBOX_COLUMNS, event_from, job_from, job_page, list_query


class PgReads:
    """The reads that page, count and list."""

    db: PgDatabase

    async def _page(
        self, *, tenant: str | None, state: State | str | None, provider: str | None, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        sql, params = list_query(
            tenant, state=state, provider=provider, cursor=cursor, limit=limit, mark=lambda n: f"${n}"
        )
        return job_page(await self.db.fetch(sql, *params), limit)

    async def list_jobs(
        self,
        tenant: str,
        *,
        state: State | str | None = None,
        provider: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        return await self._page(tenant=tenant, state=state, provider=provider, limit=limit, cursor=cursor)

    async def operator_jobs(
        self,
        *,
        tenant: str | None = None,
        state: State | str | None = None,
        provider: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> tuple[list[JobRecord], str | None]:
        return await self._page(tenant=tenant, state=state, provider=provider, limit=limit, cursor=cursor)

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT state, count(*) FROM jobs GROUP BY state")
        counts = {state.value: 0 for state in State}
        counts.update({row[0]: row[1] for row in rows})
        return counts

    async def count_by_provider_state(self) -> dict[str, dict[str, int]]:
        rows = await self.db.fetch("SELECT provider, state, count(*) FROM jobs GROUP BY provider, state")
        counts: dict[str, dict[str, int]] = {}
        for provider, state, n in rows:
            counts.setdefault(provider, {s.value: 0 for s in State})[state] = n
        return counts

    async def webhook_events(self, job_id: str) -> list[OutboxEvent]:
        rows = await self.db.fetch(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = $1 ORDER BY seq", job_id)
        return [event_from(row) for row in rows]

    async def get_sources(self, job_id: str) -> list[str] | None:
        raw = await self.db.fetchval("SELECT texts FROM job_sources WHERE job_id = $1", job_id)
        return None if raw is None else json.loads(raw)

    async def jobs_with_vendor_ref(self, provider: str, vendor_ref: dict[str, Any]) -> list[JobRecord]:
        # $1 the provider, $2 the given ref as JSON, $3... its keys; a JSON null counts as absent (as in SQLite)
        keys = list(vendor_ref)
        if not keys:
            return []
        found = [f"(vendor_ref::jsonb -> ${n})" for n in range(3, 3 + len(keys))]
        absent = [f"({f} IS NULL OR {f} = 'null'::jsonb)" for f in found]
        agree = " AND ".join(
            f"({a} OR {f} = ($2::jsonb -> ${n}))" for n, (f, a) in enumerate(zip(found, absent, strict=True), 3)
        )
        shared = " OR ".join(f"NOT {a}" for a in absent)
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE provider = $1 AND {agree} AND ({shared}) ORDER BY created_us, id"
        return [job_from(row) for row in await self.db.fetch(sql, provider, dumps(vendor_ref), *keys)]
