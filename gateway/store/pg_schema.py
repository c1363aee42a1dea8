"""The PostgreSQL store's schema: an ordered list of migrations, applied at open under an advisory lock, so that
several replicas starting at once migrate the database exactly once (the others wait, then find it current).

Columns mirror the SQLite store's (times as UTC microseconds, JSON as text, flags as integers), so both backends
share one row encoding (`rows`), plus what coordination needs: each job's lease (owner replica, expiry,
fencing token), the webhook events' delivery leases, the replica set, and artifact bytes kept in the database."""

from __future__ import annotations

import logging

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway.store.base import StoreError
from gateway.store.sqlite_schema import LEDGER_TABLE, OUTBOX_FAILED_INDEXES

log = logging.getLogger("gateway.store")

#: the advisory lock key held while migrating ("gateway" in ASCII)
MIGRATION_LOCK = 0x67617465776179

#: Entry N-1 brings a database from version N-1 to N. Append only; never edit a released entry.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: initial schema
        """CREATE FUNCTION gw_now_us() RETURNS BIGINT LANGUAGE sql VOLATILE
           AS $$ SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT $$""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            provider TEXT NOT NULL,
            state TEXT NOT NULL,
            terminal INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_us BIGINT NOT NULL,
            updated_us BIGINT NOT NULL,
            finished_us BIGINT,
            checked_us BIGINT,
            stale INTEGER NOT NULL DEFAULT 0,
            webhook_url TEXT,
            route TEXT,
            result_available INTEGER NOT NULL DEFAULT 0,
            anomalies INTEGER NOT NULL DEFAULT 0,
            vendor_ref TEXT NOT NULL,
            status TEXT NOT NULL,
            metadata TEXT NOT NULL,
            attempts TEXT NOT NULL,
            eta_us BIGINT,
            stale_reason TEXT,
            private_ref TEXT,
            owner TEXT,
            lease_until_us BIGINT NOT NULL DEFAULT 0,
            fence BIGINT NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX jobs_by_tenant ON jobs (tenant, created_us, id)",
        "CREATE INDEX jobs_by_tenant_state ON jobs (tenant, state, created_us, id)",
        "CREATE INDEX jobs_by_tenant_provider ON jobs (tenant, provider, created_us, id)",
        "CREATE INDEX jobs_open ON jobs (created_us, id) WHERE terminal = 0",
        "CREATE INDEX jobs_open_by_lease ON jobs (lease_until_us) WHERE terminal = 0",
        "CREATE INDEX jobs_open_by_owner ON jobs (owner) WHERE terminal = 0",
        """CREATE TABLE idempotency (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            created_us BIGINT NOT NULL,
            PRIMARY KEY (tenant, key)
        )""",
        """CREATE TABLE transitions (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            version INTEGER NOT NULL,
            at_us BIGINT NOT NULL,
            state TEXT NOT NULL,
            vendor_status TEXT,
            stage TEXT,
            progress INTEGER,
            status TEXT NOT NULL,
            PRIMARY KEY (job_id, version)
        )""",
        """CREATE TABLE outbox (
            seq BIGSERIAL PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            version INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us BIGINT NOT NULL,
            delivered_us BIGINT,
            last_error TEXT,
            created_us BIGINT NOT NULL,
            lease_owner TEXT,
            lease_until_us BIGINT NOT NULL DEFAULT 0,
            UNIQUE (job_id, version)
        )""",
        "CREATE INDEX outbox_due ON outbox (next_attempt_us, seq) WHERE delivered_us IS NULL",
        "CREATE INDEX outbox_job_pending ON outbox (job_id, seq) WHERE delivered_us IS NULL",
        """CREATE TABLE results (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            result TEXT NOT NULL,
            saved_us BIGINT NOT NULL
        )""",
        """CREATE TABLE artifacts (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            content_type TEXT NOT NULL,
            filename TEXT,
            size BIGINT NOT NULL,
            generation BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            saved_us BIGINT NOT NULL
        )""",
        """CREATE TABLE artifact_chunks (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            generation BIGINT NOT NULL,
            seq INTEGER NOT NULL,
            data BYTEA NOT NULL,
            PRIMARY KEY (job_id, generation, seq)
        )""",
        "CREATE SEQUENCE artifact_generations",
        """CREATE TABLE job_sources (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            texts TEXT NOT NULL
        )""",
        "CREATE INDEX jobs_by_created ON jobs (created_us, id)",
        "CREATE INDEX jobs_by_state ON jobs (state, created_us, id)",
        """CREATE TABLE replicas (
            id TEXT PRIMARY KEY,
            started_us BIGINT NOT NULL,
            seen_us BIGINT NOT NULL
        )""",
    ),
    (  # 2: an Idempotency-Key is reserved before the vendor is called; the reservation ends with the key's job
        # (or is given up when the vendor call fails), and one whose request died expires and may be taken over
        """CREATE TABLE idempotency_reservations (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_us BIGINT NOT NULL,
            PRIMARY KEY (tenant, key)
        )""",
    ),
    (  # 3: choosing vendors: shadow links, the canonical input kept for fail-over, the usage ledger (one entry per
        # job and attempt), and the per-tenant daily job counts budgets reserve
        "ALTER TABLE jobs ADD COLUMN shadow_of TEXT",
        "ALTER TABLE jobs ADD COLUMN shadow TEXT",
        """CREATE TABLE job_inputs (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            input TEXT NOT NULL
        )""",
        LEDGER_TABLE,
        "CREATE INDEX usage_by_tenant ON usage_ledger (tenant, finished_us)",
        """CREATE TABLE budget_days (
            tenant TEXT NOT NULL,
            day TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            PRIMARY KEY (tenant, day)
        )""",
    ),
    (  # 4: the delivery log, dead letters, endpoints disabled by 410 Gone; a store-wide sequence of transitions,
        # numbered under one row lock so that the numbers grow in commit order (the tenant event stream)
        """ALTER TABLE outbox ADD COLUMN step INTEGER NOT NULL DEFAULT 0,
           ADD COLUMN generation INTEGER NOT NULL DEFAULT 0, ADD COLUMN failed_us BIGINT, ADD COLUMN failure TEXT""",
        *OUTBOX_FAILED_INDEXES,
        """CREATE TABLE delivery_attempts (
            event_id TEXT NOT NULL REFERENCES outbox (id),
            number INTEGER NOT NULL,
            at_us BIGINT NOT NULL,
            duration_ms INTEGER NOT NULL,
            status INTEGER,
            error TEXT,
            message TEXT,
            PRIMARY KEY (event_id, number)
        )""",
        """CREATE TABLE disabled_endpoints (
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            disabled_us BIGINT NOT NULL,
            reason TEXT NOT NULL,
            event_id TEXT,
            PRIMARY KEY (tenant, url)
        )""",
        "ALTER TABLE transitions ADD COLUMN seq BIGINT, ADD COLUMN tenant TEXT, ADD COLUMN provider TEXT",
        "UPDATE transitions AS t SET tenant = j.tenant, provider = j.provider FROM jobs AS j WHERE j.id = t.job_id",
        """UPDATE transitions AS t SET seq = numbered.n
           FROM (SELECT job_id, version, row_number() OVER (ORDER BY at_us, job_id, version) AS n
                 FROM transitions) AS numbered
           WHERE numbered.job_id = t.job_id AND numbered.version = t.version""",
        "CREATE UNIQUE INDEX transitions_seq ON transitions (seq)",
        "CREATE INDEX transitions_by_tenant ON transitions (tenant, seq)",
        "CREATE TABLE event_seq (id INTEGER PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL)",
        "INSERT INTO event_seq (id, last) SELECT 1, coalesce(max(seq), 0) FROM transitions",
    ),
    (  # 5: a lease per replica instead of per job: renewing is one row (the heartbeat), never every job's row;
        # a job is owned while its owner replica's lease runs (jobs.lease_until_us is no longer read)
        "ALTER TABLE replicas ADD COLUMN lease_until_us BIGINT NOT NULL DEFAULT 0",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


async def migrate(conn: PoolConnectionProxy[asyncpg.Record]) -> None:
    """Bring the database to SCHEMA_VERSION; concurrent callers (replicas starting together) apply each
    migration once: the first takes the advisory lock, the others wait for it and then find nothing to do."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_us BIGINT NOT NULL)"
        )
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store's schema version {current} is newer than this gateway's ({SCHEMA_VERSION})")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_version (version, applied_us) "
                "VALUES ($1, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT)",
                version,
            )
            log.info("store schema migrated to version %d", version)
