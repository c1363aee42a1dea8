"""The SQLite store's listings: a tenant's jobs and the operator's view across tenants (jobs, counts per
provider and state, a job's webhook events), and the source texts kept per job for pairing results."""

from __future__ import annotations

import json
from typing import Any

from gateway.states import State
from gateway.store.codec import dumps
from gateway.store.records import JobRecord, OutboxEvent
from gateway.store.sqlite_db import SqliteDatabase
from gateway.store.sqlite_rows import JOB_COLUMNS, OUTBOX_COLUMNS, event_from, job_from, job_page, list_query


class SqliteReads:
    """Mixed into `SqliteStore`: the reads that page, count and list."""

    db: SqliteDatabase

    async def _page(
        self,
        *,
        tenant: str | None,
        state: State | str | None,
        provider: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[JobRecord], str | None]:
        """Jobs newest first (one tenant's, or every tenant's when `tenant` is None) and the next cursor."""
        sql, params = list_query(
            tenant, state=state, provider=provider, cursor=cursor, limit=limit, mark=lambda _n: "?"
        )
        return job_page(await self.db.read(lambda conn: conn.execute(sql, params).fetchall()), limit)

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

    async def count_by_provider_state(self) -> dict[str, dict[str, int]]:
        rows = await self.db.read(
            lambda conn: conn.execute("SELECT provider, state, count(*) FROM jobs GROUP BY provider, state").fetchall()
        )
        counts: dict[str, dict[str, int]] = {}
        for provider, state, n in rows:
            counts.setdefault(provider, {s.value: 0 for s in State})[state] = n
        return counts

    async def webhook_events(self, job_id: str) -> list[OutboxEvent]:
        rows = await self.db.read(
            lambda conn: conn.execute(
                f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = ? ORDER BY seq", (job_id,)
            ).fetchall()
        )
        return [event_from(row) for row in rows]

    async def get_sources(self, job_id: str) -> list[str] | None:
        row = await self.db.read(
            lambda conn: conn.execute("SELECT texts FROM job_sources WHERE job_id = ?", (job_id,)).fetchone()
        )
        return None if row is None else json.loads(row[0])

    async def jobs_with_vendor_ref(self, provider: str, vendor_ref: dict[str, Any]) -> list[JobRecord]:
        # ?1 the provider, ?2 the given ref as JSON, ?3... the JSON path of each of its keys
        paths = [f'$."{key}"' for key in vendor_ref if '"' not in key]
        if not paths:
            return []
        found = [f"json_extract(vendor_ref, ?{n})" for n in range(3, 3 + len(paths))]
        agree = " AND ".join(f"({f} IS NULL OR {f} = json_extract(?2, ?{n}))" for n, f in enumerate(found, 3))
        shared = " OR ".join(f"{f} IS NOT NULL" for f in found)
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE provider = ?1 AND {agree} AND ({shared}) ORDER BY created_us, id"
        rows = await self.db.read(lambda conn: conn.execute(sql, (provider, dumps(vendor_ref), *paths)).fetchall())
        return [job_from(row) for row in rows]
