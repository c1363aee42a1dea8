"""The SQLite store's own reads (mixed into `SqliteStore`; the reads both backends run alike are `common_sql`'s):
the jobs that are one vendor job, found by their vendor_ref with SQLite's JSON functions."""

from __future__ import annotations

from typing import Any

from gateway.store.codec import dumps
from gateway.store.records import JobRecord
from gateway.store.rows import JOB_COLUMNS, job_from
from gateway.store.sqlite_db import SqliteDatabase


class SqliteReads:
    """Mixed into `SqliteStore`: the reads that page, count and list."""

    db: SqliteDatabase

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
