"""The PostgreSQL store's usage ledger reads and the daily job counts budgets reserve (mixed into `PostgresStore`,
as `SqliteUsage` is into the SQLite store). A reservation is one upsert guarded by the limit: the row lock makes
concurrent submits on every replica count one after the other, so none passes a full day."""

from __future__ import annotations

from datetime import datetime

from gateway.store.codec import to_us
from gateway.store.ledger import LEDGER_COLUMNS, entry_from
from gateway.store.pg_db import PgDatabase
from gateway.store.records import UsageEntry


class PgUsage:
    """Mixed into `PostgresStore`."""

    db: PgDatabase

    async def usage(self, tenant: str, *, since: datetime, until: datetime) -> list[UsageEntry]:
        rows = await self.db.fetch(
            f"SELECT {LEDGER_COLUMNS} FROM usage_ledger WHERE tenant = $1 AND finished_us >= $2 AND finished_us < $3 "
            "ORDER BY finished_us, job_id, attempt",
            tenant,
            to_us(since),
            to_us(until),
        )
        return [entry_from(row) for row in rows]

    async def job_usage(self, job_id: str) -> list[UsageEntry]:
        rows = await self.db.fetch(
            f"SELECT {LEDGER_COLUMNS} FROM usage_ledger WHERE job_id = $1 ORDER BY attempt", job_id
        )
        return [entry_from(row) for row in rows]

    async def spend(self, tenant: str, *, since: datetime) -> dict[str, int]:
        rows = await self.db.fetch(
            "SELECT currency, sum(cost_micros) FROM usage_ledger WHERE tenant = $1 AND finished_us >= $2 "
            "AND currency IS NOT NULL GROUP BY currency",
            tenant,
            to_us(since),
        )
        return {row[0]: int(row[1]) for row in rows}

    async def reserve_budget_job(self, tenant: str, day: str, limit: int) -> int | None:
        if limit < 1:
            return None
        count = await self.db.fetchval(
            "INSERT INTO budget_days (tenant, day, jobs) VALUES ($1, $2, 1) "
            "ON CONFLICT (tenant, day) DO UPDATE SET jobs = budget_days.jobs + 1 WHERE budget_days.jobs < $3 "
            "RETURNING jobs",
            tenant,
            day,
            limit,
        )
        return None if count is None else int(count)

    async def release_budget_job(self, tenant: str, day: str) -> None:
        await self.db.execute(
            "UPDATE budget_days SET jobs = jobs - 1 WHERE tenant = $1 AND day = $2 AND jobs > 0", tenant, day
        )

    async def budget_jobs(self, tenant: str, day: str) -> int:
        count = await self.db.fetchval("SELECT jobs FROM budget_days WHERE tenant = $1 AND day = $2", tenant, day)
        return 0 if count is None else int(count)
