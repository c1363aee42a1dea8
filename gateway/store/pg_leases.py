"""The coordination half of `PostgresStore` (`gateway.store.shared.SharedStore`): the replica set, job leases
with fencing tokens, and the notification listener. Lease times are the database's clock, so replicas with
skewed clocks still agree on when a lease has run out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.store.pg_db import PgDatabase
from gateway.store.pg_rows import CHANNEL
from gateway.store.records import JobRecord
from gateway.store.shared import ChangeCallback, ClusterView, SharedStore
from gateway.store.sqlite_rows import JOB_COLUMNS, job_from

log = logging.getLogger("gateway.store")

_JOB_RETURNING = ", ".join(f"jobs.{c.strip()}" for c in JOB_COLUMNS.split(","))


class PgLeases(SharedStore):
    """Leases and notifications on PostgreSQL (mixed into `PostgresStore`)."""

    db: PgDatabase
    _held: dict[str, int]

    @property
    def _lease_us(self) -> int:
        return int(self.lease_s * 1_000_000)

    def held(self) -> dict[str, int]:
        return dict(self._held)

    def forget_held(self) -> list[str]:
        held = list(self._held)
        self._held.clear()
        return held

    async def heartbeat(self) -> ClusterView:
        row = await self.db.fetchrow(
            "WITH up AS (INSERT INTO replicas (id, started_us, seen_us) VALUES ($1, gw_now_us(), gw_now_us()) "
            "ON CONFLICT (id) DO UPDATE SET seen_us = excluded.seen_us), "
            "gone AS (DELETE FROM replicas WHERE id <> $1 AND seen_us < gw_now_us() - $2) "
            "SELECT (SELECT count(*) FROM replicas WHERE id <> $1 AND seen_us >= gw_now_us() - $2) + 1 AS replicas, "
            "(SELECT count(*) FROM jobs WHERE terminal = 0) AS open_jobs",
            self.replica,
            self._lease_us,
        )
        assert row is not None
        return ClusterView(replicas=int(row["replicas"]), open_jobs=int(row["open_jobs"]))

    async def claim_jobs(self, limit: int) -> list[JobRecord]:
        if limit < 1:
            return []
        rows = await self.db.fetch(
            "WITH c AS (SELECT id FROM jobs WHERE terminal = 0 AND (owner IS NULL OR lease_until_us < gw_now_us()) "
            "ORDER BY lease_until_us, created_us LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs SET owner = $1, lease_until_us = gw_now_us() + $3, fence = jobs.fence + 1 FROM c "
            f"WHERE jobs.id = c.id RETURNING jobs.fence AS lease_fence, {_JOB_RETURNING}",
            self.replica,
            limit,
            self._lease_us,
        )
        jobs = []
        for row in rows:
            self._held[row["id"]] = row["lease_fence"]
            jobs.append(job_from(row))
        return jobs

    async def renew_leases(self) -> set[str]:
        before = dict(self._held)  # jobs stored or claimed while the statement runs are not lost
        rows = await self.db.fetch(
            "UPDATE jobs SET lease_until_us = gw_now_us() + $2 WHERE owner = $1 AND terminal = 0 RETURNING id, fence",
            self.replica,
            self._lease_us,
        )
        current = {row["id"]: row["fence"] for row in rows}
        lost = {
            job_id
            for job_id, fence in before.items()
            if current.get(job_id) != fence and self._held.get(job_id) == fence
        }
        for job_id in lost:
            self._held.pop(job_id, None)
        # rows still naming this replica that it no longer holds (it let go during an outage): free them now
        orphans = [job_id for job_id, fence in current.items() if self._held.get(job_id) != fence]
        if orphans:
            await self.db.execute(
                "UPDATE jobs SET owner = NULL, lease_until_us = 0 "
                "WHERE owner = $1 AND id = ANY($2::text[]) AND NOT (id = ANY($3::text[]))",
                self.replica,
                orphans,
                list(self._held),
            )
        return lost

    async def release_jobs(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        for job_id in job_ids:
            self._held.pop(job_id, None)
        await self.db.execute(
            "UPDATE jobs SET owner = NULL, lease_until_us = 0 WHERE owner = $1 AND id = ANY($2::text[])",
            self.replica,
            job_ids,
        )

    async def take_over(self, job_id: str) -> bool:
        if job_id in self._held:
            return True
        fence = await self.db.fetchval(
            "UPDATE jobs SET owner = $1, lease_until_us = gw_now_us() + $3, fence = fence + 1 "
            "WHERE id = $2 AND terminal = 0 RETURNING fence",
            self.replica,
            job_id,
            self._lease_us,
        )
        if fence is None:
            return False
        self._held[job_id] = fence
        return True

    async def retire(self) -> None:
        held = list(self._held)
        self._held.clear()
        async with self.db.tx() as tx:
            await tx.execute(
                "UPDATE jobs SET owner = NULL, lease_until_us = 0 WHERE owner = $1 AND id = ANY($2::text[])",
                self.replica,
                held,
            )
            await tx.execute("DELETE FROM replicas WHERE id = $1", self.replica)

    async def listen(self, on_change: ChangeCallback, on_connected: Callable[[bool], Awaitable[None] | None]) -> None:
        def on_payload(payload: str) -> None:
            try:
                job_id, version, hook = payload.rsplit(" ", 2)
                on_change(job_id, int(version), hook == "1")
            except Exception:  # a foreign or malformed notice must not stop the listener
                log.exception("ignored store notification %r", payload[:200])

        await self.db.listen(CHANNEL, on_payload, on_connected)
