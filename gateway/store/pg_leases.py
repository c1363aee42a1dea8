"""The coordination half of `PostgresStore` (`gateway.store.shared.SharedStore`): the replica set, leases with
fencing tokens, and the notification listener.

The lease is the replica's (its row in `replicas`, renewed by each heartbeat: one row, however many jobs); a job
is owned while its owner's lease runs, and its fencing token grows each time it changes owner. Lease times are
the database's clock, so replicas with skewed clocks still agree on when a lease has run out."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.store.pg_db import PgDatabase
from gateway.store.pg_rows import CHANNEL
from gateway.store.records import JobRecord
from gateway.store.rows import JOB_COLUMNS, job_from
from gateway.store.shared import ChangeCallback, ClusterView, SharedStore

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
            "WITH old AS (SELECT lease_until_us FROM replicas WHERE id = $1), "
            "up AS (INSERT INTO replicas (id, started_us, seen_us, lease_until_us) "
            "VALUES ($1, gw_now_us(), gw_now_us(), gw_now_us() + $2) "
            "ON CONFLICT (id) DO UPDATE SET seen_us = excluded.seen_us, lease_until_us = excluded.lease_until_us), "
            "gone AS (DELETE FROM replicas WHERE id <> $1 AND lease_until_us < gw_now_us() - $2) "
            "SELECT (SELECT count(*) FROM replicas WHERE id <> $1 AND lease_until_us >= gw_now_us()) + 1 AS replicas, "
            "(SELECT count(*) FROM jobs WHERE terminal = 0) AS open_jobs, "
            "(SELECT count(*) FROM jobs WHERE terminal = 0 AND owner = $1) AS owned, "
            "(SELECT count(*) FROM jobs WHERE terminal = 0 AND (owner IS NULL OR owner <> ALL "
            "(SELECT id FROM replicas WHERE lease_until_us >= gw_now_us()))) AS claimable, "
            "coalesce((SELECT lease_until_us FROM old), 0) < gw_now_us() AS lapsed, "
            # a due head event of its job that no replica holds (the dispatchers' due_events would return it)
            "EXISTS (SELECT 1 FROM outbox AS o WHERE o.delivered_us IS NULL AND o.failed_us IS NULL "
            "AND o.next_attempt_us <= gw_now_us() AND (o.lease_owner IS NULL OR o.lease_until_us < gw_now_us()) "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS p WHERE p.job_id = o.job_id AND p.delivered_us IS NULL "
            "AND p.failed_us IS NULL AND p.seq < o.seq)) AS events_waiting",
            self.replica,
            self._lease_us,
        )
        assert row is not None
        lapsed = bool(row["lapsed"]) and bool(self._held)
        if lapsed:  # the jobs may have been claimed by others meanwhile: start over
            log.warning("this replica's lease ran out; letting go of %d jobs to claim again", len(self._held))
        return ClusterView(
            replicas=int(row["replicas"]),
            open_jobs=int(row["open_jobs"]),
            lapsed=lapsed,
            owned=int(row["owned"]),
            claimable=int(row["claimable"]),
            events_waiting=bool(row["events_waiting"]),
        )

    async def claim_jobs(self, limit: int) -> list[JobRecord]:
        if limit < 1:
            return []
        rows = await self.db.fetch(
            # the live owners are read once (not joined per row): a row another claimer has just taken is
            # re-checked against its new owner, who is live, and skipped
            "WITH c AS (SELECT id FROM jobs WHERE terminal = 0 AND (owner IS NULL OR owner <> ALL "
            "(SELECT id FROM replicas WHERE lease_until_us >= gw_now_us())) "
            "ORDER BY created_us LIMIT $2 FOR UPDATE SKIP LOCKED) "
            "UPDATE jobs SET owner = $1, fence = jobs.fence + 1 FROM c "
            f"WHERE jobs.id = c.id RETURNING jobs.fence AS lease_fence, {_JOB_RETURNING}",
            self.replica,
            limit,
        )
        jobs = []
        for row in rows:
            self._held[row["id"]] = row["lease_fence"]
            jobs.append(job_from(row))
        return jobs

    async def renew_leases(self) -> set[str]:
        """The heartbeat renewed this replica's lease (all its jobs at once); here: which jobs it no longer owns
        (a cancel through another replica took one over), found by counting first (one cheap statement)."""
        before = dict(self._held)  # jobs stored or claimed while the statements run are not lost
        owned = await self.db.fetchval("SELECT count(*) FROM jobs WHERE owner = $1 AND terminal = 0", self.replica)
        if owned == len(before):
            return set()
        rows = await self.db.fetch("SELECT id, fence FROM jobs WHERE owner = $1 AND terminal = 0", self.replica)
        current = {row["id"]: row["fence"] for row in rows}
        lost = {
            job_id
            for job_id, fence in before.items()
            if current.get(job_id) != fence and self._held.get(job_id) == fence
        }
        for job_id in lost:
            self._held.pop(job_id, None)
        # rows naming this replica that it does not hold (it let go during an outage, or restarted under the
        # same name): free them, so they are claimed like any unowned job
        orphans = [job_id for job_id, fence in current.items() if self._held.get(job_id) != fence]
        if orphans:
            await self.db.execute(
                "UPDATE jobs SET owner = NULL WHERE owner = $1 AND id = ANY($2::text[]) AND NOT (id = ANY($3::text[]))",
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
            "UPDATE jobs SET owner = NULL WHERE owner = $1 AND id = ANY($2::text[])", self.replica, job_ids
        )

    async def take_over(self, job_id: str) -> bool:
        if job_id in self._held:
            return True
        fence = await self.db.fetchval(
            "UPDATE jobs SET owner = $1, fence = fence + 1 WHERE id = $2 AND terminal = 0 RETURNING fence",
            self.replica,
            job_id,
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
                "UPDATE jobs SET owner = NULL WHERE owner = $1 AND id = ANY($2::text[])", self.replica, held
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
