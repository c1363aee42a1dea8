"""The PostgreSQL store's own reads (mixed into `PostgresStore`, as `SqliteReads` is into the SQLite store; the
reads both backends run alike are `common_sql`'s): the jobs that are one vendor job, found by their vendor_ref with
PostgreSQL's jsonb operators."""

from __future__ import annotations

from typing import Any

from gateway.store.codec import dumps
from gateway.store.pg_db import PgDatabase
from gateway.store.records import JobRecord
from gateway.store.rows import JOB_COLUMNS, job_from


class PgReads:
    """The reads that page, count and list."""

    db: PgDatabase

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
