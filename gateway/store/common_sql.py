"""The statements every backend runs alike, written once: reads of jobs, their history, results, the usage ledger
and the webhook outbox, and the writes that are one statement (mixed into `SqliteStore` and `PostgresStore`). Each
is written in PostgreSQL's numbered form (`$1`), which the SQLite database reads as `?1` (`sqlite_db.dialect`); a
backend supplies only the connection calls (`SqlDatabase`) and keeps to itself what its dialect does differently."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from gateway.states import State
from gateway.store.codec import to_us
from gateway.store.columns import Row
from gateway.store.ledger import LEDGER_COLUMNS, entry_from
from gateway.store.records import (
    DisabledEndpoint,
    EventDeliveries,
    JobRecord,
    OutboxEvent,
    TransitionRecord,
    UsageEntry,
)
from gateway.store.rows import (
    ENDPOINT_COLUMNS,
    JOB_COLUMNS,
    JOB_DELIVERIES,
    OUTBOX_COLUMNS,
    TRANSITION_COLUMNS,
    deliveries_from,
    endpoint_from,
    event_from,
    job_from,
    job_page,
    list_query,
    transition_from,
)

#: an event still to be delivered
PENDING = "delivered_us IS NULL AND failed_us IS NULL"


class SqlDatabase(Protocol):
    """One statement at a time, numbered `$n` placeholders (asyncpg's calls; `SqliteDatabase` has the same)."""

    async def fetch(self, sql: str, *args: Any) -> Sequence[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...

    async def fetchval(self, sql: str, *args: Any) -> Any: ...

    async def execute(self, sql: str, *args: Any) -> Any: ...


Db = TypeVar("Db", bound=SqlDatabase)


class SqlCommon(Generic[Db]):
    """What both SQL stores do alike: each method is one statement on `db`."""

    db: Db

    # jobs

    async def get_job(self, job_id: str, *, tenant: str | None = None) -> JobRecord | None:
        if tenant is None:
            row = await self.db.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1", job_id)
        else:
            row = await self.db.fetchrow(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND tenant = $2", job_id, tenant
            )
        return None if row is None else job_from(row)

    async def _jobs_page(
        self, tenant: str | None, state: State | str | None, provider: str | None, limit: int, cursor: str | None
    ) -> tuple[list[JobRecord], str | None]:
        sql, params = list_query(tenant, state=state, provider=provider, cursor=cursor, limit=limit)
        return job_page(await self.db.fetch(sql, *params), limit)

    async def non_terminal_jobs(self) -> list[JobRecord]:
        rows = await self.db.fetch(f"SELECT {JOB_COLUMNS} FROM jobs WHERE terminal = 0 ORDER BY created_us, id")
        return [job_from(row) for row in rows]

    async def count_by_state(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT state, count(*) AS n FROM jobs GROUP BY state")
        counts = {state.value: 0 for state in State}
        counts.update({row["state"]: row["n"] for row in rows})
        return counts

    async def count_by_provider_state(self) -> dict[str, dict[str, int]]:
        rows = await self.db.fetch("SELECT provider, state, count(*) AS n FROM jobs GROUP BY provider, state")
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["provider"], {s.value: 0 for s in State})[row["state"]] = row["n"]
        return counts

    async def get_sources(self, job_id: str) -> list[str] | None:
        raw = await self.db.fetchval("SELECT texts FROM job_sources WHERE job_id = $1", job_id)
        return None if raw is None else json.loads(raw)

    async def get_input(self, job_id: str) -> str | None:
        raw = await self.db.fetchval("SELECT input FROM job_inputs WHERE job_id = $1", job_id)
        return None if raw is None else str(raw)

    async def get_result(self, job_id: str) -> dict[str, Any] | None:
        raw = await self.db.fetchval("SELECT result FROM results WHERE job_id = $1", job_id)
        return None if raw is None else json.loads(raw)

    async def release_idempotency(self, tenant: str, key: str, *, owner: str) -> None:
        await self.db.execute(
            "DELETE FROM idempotency_reservations WHERE tenant = $1 AND key = $2 AND owner = $3", tenant, key, owner
        )

    # history

    async def transitions(self, job_id: str, *, after_version: int = 0) -> list[TransitionRecord]:
        rows = await self.db.fetch(
            f"SELECT {TRANSITION_COLUMNS} FROM transitions WHERE job_id = $1 AND version > $2 ORDER BY version",
            job_id,
            after_version,
        )
        return [transition_from(row) for row in rows]

    async def get_transition(self, job_id: str, version: int) -> TransitionRecord | None:
        row = await self.db.fetchrow(
            f"SELECT {TRANSITION_COLUMNS} FROM transitions WHERE job_id = $1 AND version = $2", job_id, version
        )
        return None if row is None else transition_from(row)

    # the usage ledger and budgets

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
            "SELECT currency, sum(cost_micros) AS total FROM usage_ledger WHERE tenant = $1 AND finished_us >= $2 "
            "AND currency IS NOT NULL GROUP BY currency",
            tenant,
            to_us(since),
        )
        return {row["currency"]: int(row["total"]) for row in rows}

    async def release_budget_job(self, tenant: str, day: str) -> None:
        await self.db.execute(
            "UPDATE budget_days SET jobs = jobs - 1 WHERE tenant = $1 AND day = $2 AND jobs > 0", tenant, day
        )

    async def budget_jobs(self, tenant: str, day: str) -> int:
        count = await self.db.fetchval("SELECT jobs FROM budget_days WHERE tenant = $1 AND day = $2", tenant, day)
        return 0 if count is None else int(count)

    # the webhook outbox

    async def webhook_events(self, job_id: str) -> list[OutboxEvent]:
        rows = await self.db.fetch(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE job_id = $1 ORDER BY seq", job_id)
        return [event_from(row) for row in rows]

    async def job_deliveries(self, job_id: str) -> list[EventDeliveries]:
        return deliveries_from(await self.db.fetch(JOB_DELIVERIES, job_id))

    async def get_event(self, event_id: str, *, tenant: str | None = None) -> OutboxEvent | None:
        row = await self.db.fetchrow(f"SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1", event_id)
        if row is None or (tenant is not None and row["tenant"] != tenant):
            return None
        return event_from(row)

    async def disabled_endpoint(self, tenant: str, url: str) -> DisabledEndpoint | None:
        row = await self.db.fetchrow(
            f"SELECT {ENDPOINT_COLUMNS} FROM disabled_endpoints WHERE tenant = $1 AND url = $2", tenant, url
        )
        return None if row is None else endpoint_from(row)

    async def pending_event_count(self) -> int:
        return int(await self.db.fetchval(f"SELECT count(*) FROM outbox WHERE {PENDING}"))
