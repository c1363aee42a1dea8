"""The store's webhook outbox beyond due/delivered: the delivery log, dead letters, endpoints disabled by 410,
retry and replay, and the store-wide transition sequence of the tenant event stream. Every backend (the `store`
fixture runs each test on SQLite and PostgreSQL), and the SQLite migration that numbers existing transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_records import sqlite_at_version

from gateway.states import CanonicalStatus, State
from gateway.store import open_store
from gateway.store.codec import to_us
from gateway.store.records import DeliveryAttempt, DisabledEndpoint, JobRecord
from gateway.store.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HOOK = "https://hooks.example/a"


def job(job_id: str, *, tenant: str = "t1", provider: str = "camb", url: str | None = HOOK) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        provider=provider,
        status=CanonicalStatus(state=State.QUEUED),
        created_at=T0,
        updated_at=T0,
        webhook_url=url,
    )


def attempt(event_id: str, status: int | None = 500, at: datetime = T0, error: str | None = None) -> DeliveryAttempt:
    failed = status is None or not 200 <= status < 300
    return DeliveryAttempt(
        event_id=event_id,
        number=1,
        at=at,
        duration_ms=7,
        status=status,
        error=(error or ("http_status" if status else "timeout")) if failed else None,
        message=f"receiver answered HTTP {status}" if failed else None,
    )


async def advance(store: SqliteStore, job_id: str, *states: State, at: datetime = T0) -> None:
    for state in states:
        _, moved = await store.record_status(job_id, CanonicalStatus(state=state), checked_at=at)
        assert moved


async def test_every_try_is_logged_in_order_and_the_event_moves_on(store):
    await store.create_job(job("job_a"))
    retry_at = T0 + timedelta(seconds=5)
    assert await store.record_attempt(attempt("evt_job_a_1"), generation=0, next_attempt_at=retry_at)
    assert await store.record_attempt(attempt("evt_job_a_1", None), generation=0, next_attempt_at=retry_at)
    assert await store.record_attempt(attempt("evt_job_a_1", 204, at=retry_at), generation=0)
    [log] = await store.job_deliveries("job_a")
    assert [(a.number, a.status, a.error) for a in log.attempts] == [
        (1, 500, "http_status"),
        (2, None, "timeout"),
        (3, 204, None),
    ]
    assert log.event.state == "delivered" and log.event.delivered_at == retry_at
    assert log.event.attempts == 3 and log.event.step == 3 and log.event.last_error == "receiver answered HTTP None"
    with pytest.raises(ValueError, match="next_attempt_at or a failure"):
        await store.record_attempt(attempt("evt_job_a_1"), generation=0)


async def test_a_dead_letter_is_never_due_and_no_longer_holds_back_the_next_event(store):
    await store.create_job(job("job_a"))
    await advance(store, "job_a", State.RUNNING)
    assert [e.id for e in await store.due_events(T0)] == ["evt_job_a_1"]
    assert await store.record_attempt(attempt("evt_job_a_1"), generation=0, failure="gave up after 10 tries")
    event = await store.get_event("evt_job_a_1")
    assert event.state == "failed" and event.failure == "gave up after 10 tries" and event.failed_at == T0
    assert [e.id for e in await store.due_events(T0 + timedelta(days=9))] == ["evt_job_a_2"]
    assert await store.pending_event_count() == 1


async def test_a_try_started_before_a_retry_does_not_overwrite_it(store):
    await store.create_job(job("job_a"))
    before = await store.get_event("evt_job_a_1")
    retried = await store.retry_event("evt_job_a_1", tenant="t1", now=T0 + timedelta(seconds=1))
    assert retried.generation == before.generation + 1
    # the older try comes back failed: logged, but the event stays due now with its fresh schedule
    later = T0 + timedelta(hours=1)
    assert not await store.record_attempt(attempt("evt_job_a_1"), generation=before.generation, next_attempt_at=later)
    event = await store.get_event("evt_job_a_1")
    assert event.state == "pending" and event.next_attempt_at == T0 + timedelta(seconds=1) and event.step == 0
    assert event.attempts == 1


async def test_a_410_disables_the_tenants_endpoint_until_a_retry(store):
    await store.create_job(job("job_a"))
    await store.create_job(job("job_b"))  # same tenant, same URL
    await store.create_job(job("job_c", url="https://hooks.example/other"))
    await store.create_job(job("job_d", tenant="t2"))  # same URL, another tenant
    gone = DisabledEndpoint(tenant="t1", url=HOOK, disabled_at=T0, reason="410 Gone", event_id="evt_job_a_1")
    assert await store.record_attempt(attempt("evt_job_a_1", 410), generation=0, failure="410 Gone")
    assert await store.disable_endpoint(gone) == ["evt_job_b_1"]
    assert (await store.disabled_endpoint("t1", HOOK)).reason == "410 Gone"
    assert await store.disabled_endpoint("t2", HOOK) is None
    assert sorted(e.id for e in await store.due_events(T0)) == ["evt_job_c_1", "evt_job_d_1"]
    # an event queued meanwhile for the disabled endpoint is created failed, with the reason
    await advance(store, "job_a", State.RUNNING)
    event = await store.get_event("evt_job_a_2")
    assert event.state == "failed" and event.failure == "410 Gone"
    # a retry re-enables the endpoint: later events are pending again
    assert (await store.retry_event("evt_job_b_1", tenant="t1", now=T0)).state == "pending"
    assert await store.disabled_endpoint("t1", HOOK) is None
    await advance(store, "job_a", State.SUCCEEDED)
    assert (await store.get_event("evt_job_a_3")).state == "pending"


async def test_events_are_the_tenants_own(store):
    await store.create_job(job("job_a"))
    assert await store.get_event("evt_job_a_1", tenant="t2") is None
    assert await store.retry_event("evt_job_a_1", tenant="t2", now=T0) is None
    assert await store.retry_event("evt_nope_1", tenant="t1", now=T0) is None
    assert (await store.get_event("evt_job_a_1", tenant="t1")).job_id == "job_a"


async def test_replay_requeues_from_a_version_in_order(store):
    await store.create_job(job("job_a"))
    await advance(store, "job_a", State.RUNNING, State.SUCCEEDED)
    for n in (1, 2, 3):
        assert await store.record_attempt(attempt(f"evt_job_a_{n}", 200), generation=0)
    replayed = await store.replay_events("job_a", from_version=2, now=T0 + timedelta(minutes=1))
    assert [(e.id, e.state, e.step, e.generation) for e in replayed] == [
        ("evt_job_a_2", "pending", 0, 1),
        ("evt_job_a_3", "pending", 0, 1),
    ]
    assert (await store.get_event("evt_job_a_1")).state == "delivered"
    assert [e.id for e in await store.due_events(T0 + timedelta(minutes=1))] == ["evt_job_a_2"]
    assert await store.record_attempt(attempt("evt_job_a_2", 200), generation=1)
    assert [e.id for e in await store.due_events(T0 + timedelta(minutes=1))] == ["evt_job_a_3"]
    assert await store.replay_events("job_a", from_version=9, now=T0) == []


async def test_transitions_are_numbered_store_wide_in_commit_order(store, store_url, tmp_path):
    assert await store.last_event_seq() == 0
    await store.create_job(job("job_a", url=None))
    await store.create_job(job("job_b", tenant="t2", url=None))
    await store.create_job(job("job_c", provider="datafold", url=None))
    await advance(store, "job_a", State.RUNNING)
    await advance(store, "job_c", State.FAILED)
    await advance(store, "job_a", State.SUCCEEDED)
    events = await store.job_events("t1")
    assert [(e.seq, e.job.id, e.transition.version) for e in events] == [
        (1, "job_a", 1),
        (3, "job_c", 1),
        (4, "job_a", 2),
        (5, "job_c", 2),
        (6, "job_a", 3),
    ]
    assert events[-1].transition.state is State.SUCCEEDED and events[-1].job.version == 3
    assert [e.seq for e in await store.job_events("t1", after=4)] == [5, 6]
    assert [e.seq for e in await store.job_events("t1", provider="datafold")] == [3, 5]
    assert [e.seq for e in await store.job_events("t1", state=State.RUNNING)] == [4]
    assert [e.seq for e in await store.job_events("t1", limit=2)] == [1, 3]
    assert [e.job.id for e in await store.job_events("t2")] == ["job_b"]
    assert await store.last_event_seq() == 6
    await store.close()
    reopened = open_store(store_url, state_dir=tmp_path)
    await reopened.open()
    try:
        await reopened.create_job(job("job_e", tenant="t2", url=None))
        assert [e.seq for e in await reopened.job_events("t2")] == [2, 7]  # the numbering goes on after a restart
        assert await reopened.last_event_seq() == 7
    finally:
        await reopened.close()


async def test_migration_numbers_existing_transitions_by_time(tmp_path: Path):
    path = tmp_path / "old.db"
    conn = sqlite_at_version(path, 3)
    status = CanonicalStatus(state=State.QUEUED).model_dump_json()
    for job_id, tenant, at in (("job_old", "t1", T0 + timedelta(seconds=5)), ("job_older", "t2", T0)):
        conn.execute(
            "INSERT INTO jobs (id, tenant, provider, state, terminal, version, created_us, updated_us, vendor_ref, "
            "status, metadata, attempts) VALUES (?, ?, 'camb', 'queued', 0, 1, ?, ?, '{}', ?, '{}', '[]')",
            (job_id, tenant, to_us(at), to_us(at), status),
        )
        conn.execute(
            "INSERT INTO transitions (job_id, version, at_us, state, status) VALUES (?, 1, ?, 'queued', ?)",
            (job_id, to_us(at), status),
        )
    conn.execute(
        "INSERT INTO outbox (id, job_id, version, tenant, url, attempts, next_attempt_us, created_us) "
        "VALUES ('evt_job_old_1', 'job_old', 1, 't1', ?, 4, ?, ?)",
        (HOOK, to_us(T0), to_us(T0)),
    )
    conn.commit()
    conn.close()
    store = SqliteStore(path, state_dir=tmp_path)
    await store.open()
    try:
        assert [(e.seq, e.job.id) for e in await store.job_events("t2")] == [(1, "job_older")]
        assert [(e.seq, e.job.id) for e in await store.job_events("t1")] == [(2, "job_old")]
        event = await store.get_event("evt_job_old_1")
        assert (event.state, event.attempts, event.step, event.generation) == ("pending", 4, 4, 0)
        await advance(store, "job_old", State.RUNNING)
        assert [e.seq for e in await store.job_events("t1")] == [2, 3]
    finally:
        await store.close()
