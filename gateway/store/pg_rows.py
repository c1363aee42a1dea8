"""PostgreSQL statements of `PostgresStore`. Rows have the SQLite store's columns and encodings, so the same
conversions (`rows`) turn them into records; only the placeholders ($n) and the coordination differ."""

from __future__ import annotations

from typing import Any

from gateway.store.codec import event_id
from gateway.store.ledger import LEDGER_COLUMNS, LEDGER_FIELDS
from gateway.store.records import JobRecord
from gateway.store.rows import (
    JOB_COLUMNS,
    JOB_FIELDS,
    OUTBOX_COLUMNS,
    TRANSITION_COLUMNS,
    job_values,
    transition_values,
)

#: the channel every transition is announced on: "<job id> <version> <1 when an outbox event was queued, else 0>"
CHANNEL = "gateway_jobs"
NOW = "gw_now_us()"

#: columns a job never changes after it is created
_FIXED = ("id", "tenant", "created_us")
_UPDATED = [f for f in JOB_FIELDS if f not in _FIXED]

#: a new job, leased to the replica storing it ($n+1: owner, $n+2: lease in microseconds); no row on a taken id
INSERT_JOB = (
    f"INSERT INTO jobs ({JOB_COLUMNS}, owner, lease_until_us, fence) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(JOB_FIELDS) + 1))}, "
    f"${len(JOB_FIELDS) + 1}, {NOW} + ${len(JOB_FIELDS) + 2}, 1) ON CONFLICT (id) DO NOTHING RETURNING fence"
)
_ASSIGN = ", ".join(f"{f} = ${i}" for i, f in enumerate(_UPDATED, start=2))
_N = len(_UPDATED) + 1
#: a changed job, only while this replica's lease holds ($1 id, then _UPDATED, then owner, fence, prior version);
#: a terminal job has no lease (its state is frozen: only `checked_at` and anomalies change)
_GUARD = f"id = $1 AND version = ${_N + 3} AND (terminal = 1 OR (owner = ${_N + 1} AND fence = ${_N + 2}))"
#: the same guard for the one-column writes (touch, mark_stale): $1 id, $2 owner, $3 fence
LEASED = "id = $1 AND (terminal = 1 OR (owner = $2 AND fence = $3))"
UPDATE_JOB = f"UPDATE jobs SET {_ASSIGN} WHERE {_GUARD} RETURNING id"
#: many freshness notes in one statement (`Store.save_checks`; columns as rows.check_values, then each job's
#: fence, then $7 owner): applied only where this replica's lease holds; the ids it applied
SAVE_CHECKS = (
    "UPDATE jobs AS j SET stale = n.stale, stale_reason = n.reason, checked_us = coalesce(n.checked, j.checked_us), "
    "eta_us = CASE WHEN n.stale = 1 THEN j.eta_us ELSE n.eta END "
    "FROM unnest($1::int[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[]) "
    "AS n(stale, reason, checked, eta, id, fence) "
    "WHERE j.id = n.id AND (j.terminal = 1 OR (j.owner = $7 AND j.fence = n.fence)) RETURNING j.id"
)
#: a new event of the job's webhook URL: pending, or failed at once when the tenant's endpoint is disabled
#: ({id}, {version}, {tenant}, {url}, {at} are placeholders; `src` the row source it is selected from)
_OUTBOX = (
    "o AS (INSERT INTO outbox (id, job_id, version, tenant, url, attempts, next_attempt_us, created_us, failed_us, "
    "failure) SELECT {id}, {job}, {version}, {tenant}, {url}, 0, {at}, " + NOW + ", "
    "CASE WHEN d.reason IS NULL THEN NULL ELSE {at}::bigint END, d.reason FROM {src} "
    "LEFT JOIN disabled_endpoints AS d ON d.tenant = {tenant} AND d.url = {url} WHERE {url}::text IS NOT NULL)"
)
#: the next store-wide transition number; the row lock holds until commit, so numbers grow in commit order
_NEXT_SEQ = "s AS (UPDATE event_seq SET last = last + 1 WHERE id = 1 {when}RETURNING last)"
#: the same, plus its transition (numbered), its outbox event and the notification, all in one statement
TRANSITION = (
    f"WITH u AS (UPDATE jobs SET {_ASSIGN} WHERE {_GUARD} RETURNING id, tenant, provider), "
    + _NEXT_SEQ.format(when="AND EXISTS (SELECT 1 FROM u) ")
    + f", t AS (INSERT INTO transitions ({TRANSITION_COLUMNS}, tenant, provider, seq) "
    f"SELECT {', '.join(f'${i}' for i in range(_N + 4, _N + 12))}, u.tenant, u.provider, s.last FROM u, s), "
    + _OUTBOX.format(
        id=f"${_N + 12}",
        job="u.id",
        version=f"${_N + 13}",
        tenant=f"${_N + 14}",
        url=f"${_N + 15}",
        at=f"${_N + 16}",
        src="u",
    )
    + f" SELECT pg_notify('{CHANNEL}', ${_N + 17}) FROM u"
)
#: a transition that ends the job's current attempt: TRANSITION plus the attempt's usage ledger entry (after the
#: TRANSITION arguments, LEDGER_FIELDS in order), at most once per (job, attempt)
_L = _N + 18
ENDING_TRANSITION = TRANSITION.replace(
    " SELECT pg_notify",
    f", l AS (INSERT INTO usage_ledger ({LEDGER_COLUMNS}) "
    f"SELECT {', '.join(f'${i}' for i in range(_L, _L + len(LEDGER_FIELDS)))} FROM u "
    "ON CONFLICT (job_id, attempt) DO NOTHING) SELECT pg_notify",
)
#: a usage ledger entry on its own (LEDGER_FIELDS in order)
_VALUES = ", ".join(f"${i}" for i in range(1, len(LEDGER_FIELDS) + 1))
INSERT_USAGE = (
    f"INSERT INTO usage_ledger ({LEDGER_COLUMNS}) VALUES ({_VALUES}) ON CONFLICT (job_id, attempt) DO NOTHING"
)
#: a new job's first transition (numbered), outbox event and notification (after INSERT_JOB, in its transaction)
FIRST_TRANSITION = (
    "WITH "
    + _NEXT_SEQ.format(when="")
    + f", t AS (INSERT INTO transitions ({TRANSITION_COLUMNS}, tenant, provider, seq) "
    "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $10, $13, s.last FROM s), "
    + _OUTBOX.format(id="$9", job="$1", version="$2", tenant="$10", url="$11", at="$3", src="(SELECT 1) AS one")
    + " SELECT pg_notify('"
    + CHANNEL
    + "', $12)"
)
SELECT_JOB = f"SELECT {JOB_COLUMNS}, owner, fence FROM jobs WHERE id = $1"
OUTBOX_RETURNING = ", ".join(f"outbox.{c.strip()}" for c in OUTBOX_COLUMNS.split(","))


def notice(job: JobRecord) -> str:
    """The payload announcing the job's current version."""
    return f"{job.id} {job.version} {1 if job.webhook_url else 0}"


def update_args(job: JobRecord, owner: str, fence: int, prior_version: int) -> list[Any]:
    values = job_values(job)
    return [job.id, *(values[f] for f in _UPDATED), owner, fence, prior_version]


def transition_args(job: JobRecord, at_us: int, owner: str, fence: int, prior_version: int) -> list[Any]:
    """Arguments of TRANSITION: the guarded update, the transition row, the outbox event and the notice."""
    return [
        *update_args(job, owner, fence, prior_version),
        *transition_values(job, at_us),
        event_id(job.id, job.version),
        job.version,
        job.tenant,
        job.webhook_url,
        at_us,
        notice(job),
    ]


def first_transition_args(job: JobRecord, at_us: int) -> list[Any]:
    return [
        *transition_values(job, at_us),
        event_id(job.id, 1),
        job.tenant,
        job.webhook_url,
        notice(job),
        job.provider,
    ]


def insert_args(job: JobRecord, owner: str, lease_us: int) -> list[Any]:
    values = job_values(job)
    return [*(values[f] for f in JOB_FIELDS), owner, lease_us]
