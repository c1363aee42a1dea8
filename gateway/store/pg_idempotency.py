"""The PostgreSQL store's idempotency keys (mixed into `PostgresStore`, as `SqliteIdempotency` is into the SQLite
store): the job a key produced, and the reservation a request holds on a key while the vendor works.

Replicas race here at READ COMMITTED: a reservation is taken with one upsert that only replaces the caller's own
or an expired one, and the key's job is looked for again after it, so a job stored by another replica between
the two reads is found (and the reservation just taken is dropped) rather than sent to the vendor twice."""

from __future__ import annotations

from datetime import datetime

from gateway.store.base import Idempotency, IdempotencyClaim, IdempotencyMismatch, earlier_job
from gateway.store.codec import from_us, to_us
from gateway.store.pg_db import PgDatabase, Session
from gateway.store.records import JobRecord
from gateway.store.rows import JOB_COLUMNS, job_from

_JOINED = ", ".join("j." + c.strip() for c in JOB_COLUMNS.split(","))
#: a reservation replaces another only when it is the caller's own or has expired
_RESERVE = (
    "INSERT INTO idempotency_reservations (tenant, key, body_hash, owner, expires_us) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT (tenant, key) DO UPDATE SET body_hash = excluded.body_hash, owner = excluded.owner, "
    "expires_us = excluded.expires_us "
    "WHERE idempotency_reservations.owner = excluded.owner OR idempotency_reservations.expires_us <= $6 "
    "RETURNING 1"
)
#: tries of a reservation whose holder let go between two statements
_TRIES = 5


class PgIdempotency:
    db: PgDatabase

    @staticmethod
    async def _idempotent(s: Session, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        row = await s.fetchrow(
            f"SELECT i.body_hash, {_JOINED} FROM idempotency AS i JOIN jobs AS j ON j.id = i.job_id "
            "WHERE i.tenant = $1 AND i.key = $2",
            tenant,
            key,
        )
        return None if row is None else (row["body_hash"], job_from(row))

    async def find_idempotent(self, tenant: str, key: str) -> tuple[str, JobRecord] | None:
        async with self.db.session() as s:
            return await self._idempotent(s, tenant, key)

    async def reserve_idempotency(
        self, idempotency: Idempotency, *, owner: str, now: datetime, lease_s: float
    ) -> IdempotencyClaim:
        tenant, key, body_hash = idempotency
        now_us = to_us(now)
        for _ in range(_TRIES):
            async with self.db.tx() as tx:
                job = await self._key_job(tx, idempotency)
                if job is not None:
                    return IdempotencyClaim(job=job)
                if await tx.fetchval(_RESERVE, *idempotency, owner, now_us + round(lease_s * 1_000_000), now_us):
                    job = await self._key_job(tx, idempotency)  # stored by another replica meanwhile?
                    if job is None:
                        return IdempotencyClaim(reserved=True)
                    await tx.execute(
                        "DELETE FROM idempotency_reservations WHERE tenant = $1 AND key = $2 AND owner = $3",
                        tenant,
                        key,
                        owner,
                    )
                    return IdempotencyClaim(job=job)
                held = await tx.fetchrow(
                    "SELECT body_hash, expires_us FROM idempotency_reservations WHERE tenant = $1 AND key = $2",
                    tenant,
                    key,
                )
                if held is not None:
                    if held["body_hash"] != body_hash:
                        raise IdempotencyMismatch(tenant, key, None)
                    return IdempotencyClaim(held_until=from_us(held["expires_us"]))
        return IdempotencyClaim(held_until=now)  # the key kept changing hands: the caller waits and asks again

    async def _key_job(self, s: Session, idempotency: Idempotency) -> JobRecord | None:
        return earlier_job(idempotency, await self._idempotent(s, idempotency[0], idempotency[1]))

    async def renew_idempotency(self, tenant: str, key: str, *, owner: str, now: datetime, lease_s: float) -> bool:
        renewed = await self.db.fetchval(
            "UPDATE idempotency_reservations SET expires_us = $4 WHERE tenant = $1 AND key = $2 AND owner = $3 "
            "RETURNING 1",
            tenant,
            key,
            owner,
            to_us(now) + round(lease_s * 1_000_000),
        )
        return renewed is not None
