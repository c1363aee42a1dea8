"""The SQLite store's usage ledger entry, written with the transition that ends an attempt, and the daily job
counts budgets reserve (mixed into `SqliteStore`; the ledger's reads are `common_sql`'s)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from gateway.states import CanonicalStatus
from gateway.store.ledger import LEDGER_COLUMNS, LEDGER_FIELDS, entry_values, usage_entry
from gateway.store.records import JobRecord
from gateway.store.sqlite_db import SqliteDatabase

_INSERT_USAGE = (
    f"INSERT INTO usage_ledger ({LEDGER_COLUMNS}) VALUES ({', '.join('?' * len(LEDGER_FIELDS))}) "
    "ON CONFLICT (job_id, attempt) DO NOTHING"
)


def end_attempt(conn: sqlite3.Connection, job: JobRecord, ended: CanonicalStatus, at: datetime, *, final: bool) -> None:
    """In the caller's write transaction: the ledger entry of the job's current attempt, ended at `at` in `ended`
    with the usage of its kept result, at most once per (job, attempt). An attempt the job moves on from
    (`final` False) leaves no result behind."""
    row = conn.execute("SELECT result FROM results WHERE job_id = ?", (job.id,)).fetchone()
    result = None if row is None else json.loads(row[0])
    conn.execute(_INSERT_USAGE, entry_values(usage_entry(job, ended, at, result, final=final)))
    if not final and row is not None:
        conn.execute("DELETE FROM results WHERE job_id = ?", (job.id,))


class SqliteUsage:
    """Mixed into `SqliteStore`."""

    db: SqliteDatabase

    async def reserve_budget_job(self, tenant: str, day: str, limit: int) -> int | None:
        def reserve(conn: sqlite3.Connection) -> int | None:
            row = conn.execute(
                "INSERT INTO budget_days (tenant, day, jobs) SELECT ?, ?, 1 WHERE ? >= 1 "
                "ON CONFLICT (tenant, day) DO UPDATE SET jobs = jobs + 1 WHERE jobs < ? RETURNING jobs",
                (tenant, day, limit, limit),
            ).fetchone()
            return None if row is None else int(row[0])

        return await self.db.write(reserve)
