"""The PostgreSQL store's daily job counts budgets reserve (mixed into `PostgresStore`, as `SqliteUsage` is into the
SQLite store; the ledger's reads are `common_sql`'s). A reservation is one upsert guarded by the limit: the row
lock makes concurrent submits on every replica count one after the other, so none passes a full day."""

from __future__ import annotations

from gateway.store.pg_db import PgDatabase


class PgUsage:
    """Mixed into `PostgresStore`."""

    db: PgDatabase

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
