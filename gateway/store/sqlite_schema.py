"""The SQLite store's schema: an ordered list of migrations, applied in one transaction at open."""

from __future__ import annotations

import logging
import sqlite3

from gateway.store.base import StoreError
from gateway.store.codec import now_us

log = logging.getLogger("gateway.store")

#: the outbox's pending indexes rebuilt to leave failed (dead-lettered) events out, and the step counter set from
#: the attempts so far; the same statements in both dialects (the SQLite migration 8, the PostgreSQL one 4)
OUTBOX_FAILED_INDEXES = (
    "UPDATE outbox SET step = attempts",
    "DROP INDEX outbox_due",
    "DROP INDEX outbox_job_pending",
    "CREATE INDEX outbox_due ON outbox (next_attempt_us, seq) WHERE delivered_us IS NULL AND failed_us IS NULL",
    "CREATE INDEX outbox_job_pending ON outbox (job_id, seq) WHERE delivered_us IS NULL AND failed_us IS NULL",
    "CREATE INDEX outbox_endpoint_pending ON outbox (tenant, url) WHERE delivered_us IS NULL AND failed_us IS NULL",
)

#: the usage ledger (the same table in every backend): one entry per job and attempt, times in UTC microseconds,
#: money in millionths of its currency, units as a JSON object
LEDGER_TABLE = """CREATE TABLE usage_ledger (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            attempt INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            provider TEXT NOT NULL,
            route TEXT,
            shadow INTEGER NOT NULL,
            state TEXT NOT NULL,
            final INTEGER NOT NULL,
            error_code TEXT,
            submitted_us BIGINT NOT NULL,
            finished_us BIGINT NOT NULL,
            input_tokens BIGINT,
            output_tokens BIGINT,
            cost_micros BIGINT,
            currency TEXT,
            units TEXT NOT NULL,
            PRIMARY KEY (job_id, attempt)
        )"""

#: The schema, as an ordered list of migrations: entry N-1 brings a database from version N-1 to N.
#: Append only; never edit a released entry. The applied version is PRAGMA user_version, and every
#: applied migration is also logged in `schema_version`.
MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: initial schema
        """CREATE TABLE schema_version (
            version INTEGER PRIMARY KEY,
            applied_at INTEGER NOT NULL
        )""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            provider TEXT NOT NULL,
            state TEXT NOT NULL,
            terminal INTEGER NOT NULL,
            version INTEGER NOT NULL,
            created_us INTEGER NOT NULL,
            updated_us INTEGER NOT NULL,
            finished_us INTEGER,
            checked_us INTEGER,
            stale INTEGER NOT NULL DEFAULT 0,
            webhook_url TEXT,
            route TEXT,
            result_available INTEGER NOT NULL DEFAULT 0,
            anomalies INTEGER NOT NULL DEFAULT 0,
            vendor_ref TEXT NOT NULL,
            status TEXT NOT NULL,
            metadata TEXT NOT NULL,
            attempts TEXT NOT NULL
        )""",
        "CREATE INDEX jobs_by_tenant ON jobs (tenant, created_us, id)",
        "CREATE INDEX jobs_by_tenant_state ON jobs (tenant, state, created_us, id)",
        "CREATE INDEX jobs_by_tenant_provider ON jobs (tenant, provider, created_us, id)",
        "CREATE INDEX jobs_open ON jobs (created_us, id) WHERE terminal = 0",
        """CREATE TABLE idempotency (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            created_us INTEGER NOT NULL,
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE transitions (
            job_id TEXT NOT NULL REFERENCES jobs (id),
            version INTEGER NOT NULL,
            at_us INTEGER NOT NULL,
            state TEXT NOT NULL,
            vendor_status TEXT,
            stage TEXT,
            progress INTEGER,
            status TEXT NOT NULL,
            PRIMARY KEY (job_id, version)
        ) WITHOUT ROWID""",
        """CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            payload TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us INTEGER NOT NULL,
            delivered_us INTEGER,
            last_error TEXT,
            created_us INTEGER NOT NULL
        )""",
        "CREATE INDEX outbox_due ON outbox (next_attempt_us, seq) WHERE delivered_us IS NULL",
        """CREATE TABLE results (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            result TEXT NOT NULL,
            saved_us INTEGER NOT NULL
        )""",
        """CREATE TABLE artifacts (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            content_type TEXT NOT NULL,
            filename TEXT,
            size INTEGER NOT NULL,
            file TEXT NOT NULL,
            saved_us INTEGER NOT NULL
        )""",
    ),
    (  # 2: webhook events are delivered in order per job: find a job's earliest pending event quickly
        "CREATE INDEX outbox_job_pending ON outbox (job_id, seq) WHERE delivered_us IS NULL",
    ),
    (  # 3: the outbox holds (job, version); the webhook body is rendered when it is sent, not stored
        """CREATE TABLE outbox_v3 (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            job_id TEXT NOT NULL REFERENCES jobs (id),
            version INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_us INTEGER NOT NULL,
            delivered_us INTEGER,
            last_error TEXT,
            created_us INTEGER NOT NULL,
            UNIQUE (job_id, version)
        )""",
        # event ids are "evt_<job id>_<version>"
        """INSERT INTO outbox_v3 (seq, id, job_id, version, tenant, url, attempts, next_attempt_us, delivered_us,
                                  last_error, created_us)
           SELECT seq, id, job_id, CAST(substr(id, length(job_id) + 6) AS INTEGER), tenant, url, attempts,
                  next_attempt_us, delivered_us, last_error, created_us
           FROM outbox""",
        "DROP TABLE outbox",
        "ALTER TABLE outbox_v3 RENAME TO outbox",
        "CREATE INDEX outbox_due ON outbox (next_attempt_us, seq) WHERE delivered_us IS NULL",
        "CREATE INDEX outbox_job_pending ON outbox (job_id, seq) WHERE delivered_us IS NULL",
    ),
    (  # 4: the source texts of a text job, to pair each output with what it translates; the operator's
        # listing of every tenant's jobs, newest first (optionally by state)
        """CREATE TABLE job_sources (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            texts TEXT NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX jobs_by_created ON jobs (created_us, id)",
        "CREATE INDEX jobs_by_state ON jobs (state, created_us, id)",
    ),
    (  # 5: the vendor's estimate of when a job finishes, why a snapshot is stale, sealed private vendor_ref fields
        "ALTER TABLE jobs ADD COLUMN eta_us INTEGER",
        "ALTER TABLE jobs ADD COLUMN stale_reason TEXT",
        "ALTER TABLE jobs ADD COLUMN private_ref TEXT",
    ),
    (  # 6: an Idempotency-Key is reserved before the vendor is called; the reservation ends with the key's job
        # (or is given up when the vendor call fails), and one whose request died expires and may be taken over
        """CREATE TABLE idempotency_reservations (
            tenant TEXT NOT NULL,
            key TEXT NOT NULL,
            body_hash TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_us INTEGER NOT NULL,
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID""",
    ),
    (  # 7: choosing vendors: shadow links, the canonical input kept for fail-over, the usage ledger (one entry per
        # job and attempt), and the per-tenant daily job counts budgets reserve
        "ALTER TABLE jobs ADD COLUMN shadow_of TEXT",
        "ALTER TABLE jobs ADD COLUMN shadow TEXT",
        """CREATE TABLE job_inputs (
            job_id TEXT PRIMARY KEY REFERENCES jobs (id),
            input TEXT NOT NULL
        ) WITHOUT ROWID""",
        LEDGER_TABLE,
        "CREATE INDEX usage_by_tenant ON usage_ledger (tenant, finished_us)",
        """CREATE TABLE budget_days (
            tenant TEXT NOT NULL,
            day TEXT NOT NULL,
            jobs INTEGER NOT NULL,
            PRIMARY KEY (tenant, day)
        ) WITHOUT ROWID""",
    ),
    (  # 8: the delivery log, dead letters, endpoints disabled by 410 Gone; a store-wide sequence of transitions
        "ALTER TABLE outbox ADD COLUMN step INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN generation INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE outbox ADD COLUMN failed_us INTEGER",
        "ALTER TABLE outbox ADD COLUMN failure TEXT",
        *OUTBOX_FAILED_INDEXES,
        """CREATE TABLE delivery_attempts (
            event_id TEXT NOT NULL REFERENCES outbox (id),
            number INTEGER NOT NULL,
            at_us INTEGER NOT NULL,
            duration_ms INTEGER NOT NULL,
            status INTEGER,
            error TEXT,
            message TEXT,
            PRIMARY KEY (event_id, number)
        ) WITHOUT ROWID""",
        """CREATE TABLE disabled_endpoints (
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            disabled_us INTEGER NOT NULL,
            reason TEXT NOT NULL,
            event_id TEXT,
            PRIMARY KEY (tenant, url)
        ) WITHOUT ROWID""",
        "ALTER TABLE transitions ADD COLUMN seq INTEGER",
        "ALTER TABLE transitions ADD COLUMN tenant TEXT",
        "ALTER TABLE transitions ADD COLUMN provider TEXT",
        """UPDATE transitions SET tenant = jobs.tenant, provider = jobs.provider
           FROM jobs WHERE jobs.id = transitions.job_id""",
        """UPDATE transitions SET seq = numbered.n
           FROM (SELECT job_id, version, row_number() OVER (ORDER BY at_us, job_id, version) AS n
                 FROM transitions) AS numbered
           WHERE numbered.job_id = transitions.job_id AND numbered.version = transitions.version""",
        "CREATE UNIQUE INDEX transitions_seq ON transitions (seq)",
        "CREATE INDEX transitions_by_tenant ON transitions (tenant, seq)",
    ),
]

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION (inside the caller's write transaction)."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(f"the store's schema version {current} is newer than this gateway's ({SCHEMA_VERSION})")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version - 1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, now_us()))
        conn.execute(f"PRAGMA user_version = {version:d}")
        log.info("store schema migrated to version %d", version)
