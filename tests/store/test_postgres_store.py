"""The PostgreSQL store's own behaviour (the shared contract is test_store_contract.py): migrations started by
several replicas at once, job leases with fencing tokens, batch claims that skip each other's rows, notifications,
leased webhook events, URL options, and an unreachable database. Runs against the session's private server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from store_records import T0, delivered, failed, job, status

from gateway.states import State
from gateway.store import LeaseLost, StoreUnavailable, open_store
from gateway.store.pg import PostgresStore
from gateway.store.pg_schema import SCHEMA_VERSION
from gateway.store.records import Check
from gateway.testing.postgres import free_port


@pytest.fixture
async def replicas(postgres_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    """Open stores on one database, each a replica of its own (closed at the end)."""
    async with AsyncExitStack() as stack:

        async def open_replica(name: str, lease_s: float = 15.0) -> PostgresStore:
            store = open_store(f"{postgres_url}?replica={name}&lease_s={lease_s}", state_dir=tmp_path / name)
            assert isinstance(store, PostgresStore)
            await stack.enter_async_context(store)
            await store.heartbeat()  # its lease: what a replica's lease keeper does before it serves
            return store

        yield open_replica


async def test_replicas_starting_together_migrate_once(postgres_url: str, tmp_path: Path) -> None:
    stores = [open_store(postgres_url, state_dir=tmp_path / str(i)) for i in range(6)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        for s in stores:
            assert isinstance(s, PostgresStore)
            assert await s.schema_version() == SCHEMA_VERSION
        rows = await stores[0].db.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_taken_over_lease_refuses_the_old_owners_writes(replicas) -> None:
    a = await replicas("a", lease_s=1)
    b = await replicas("b", lease_s=1)
    await a.create_job(job("job_1"))
    assert set(a.held()) == {"job_1"}
    assert await b.claim_jobs(10) == []  # A's lease is alive
    with pytest.raises(LeaseLost):
        await b.record_status("job_1", status(State.RUNNING), checked_at=T0)
    await asyncio.sleep(1.2)  # A stops renewing (as if SIGKILLed): its lease runs out
    await b.heartbeat()
    claimed = await b.claim_jobs(10)
    assert [j.id for j in claimed] == ["job_1"] and b.held()["job_1"] == a.held()["job_1"] + 1
    # A's late writes are refused by the fencing token (a batch of checks names the job lost); B's apply
    await a.create_job(job("job_2"))
    assert await a.save_checks([Check("job_1", T0, False), Check("job_2", T0, False)]) == ["job_1"]
    assert (await a.get_job("job_2")).checked_at == T0 and "job_1" not in a.held()
    for write in (
        a.record_status("job_1", status(State.FAILED), checked_at=T0),
        a.touch("job_1", checked_at=T0),
        a.mark_stale("job_1"),
    ):
        with pytest.raises(LeaseLost):
            await write
    assert "job_1" not in a.held()
    record, transitioned = await b.record_status("job_1", status(State.RUNNING), checked_at=T0)
    assert transitioned and record.version == 2
    assert [t.state for t in await b.transitions("job_1")] == [State.QUEUED, State.RUNNING]
    assert await a.renew_leases() == set()  # nothing left to lose
    assert await b.renew_leases() == set()
    await a.create_job(job("job_9"))
    await asyncio.sleep(1.2)
    view = await a.heartbeat()  # A's lease had run out again: it lets go of everything and claims anew
    assert view.lapsed


async def test_renewal_reports_lost_jobs_and_release_hands_them_over(replicas) -> None:
    a = await replicas("a")
    b = await replicas("b")
    for i in range(4):
        await a.create_job(job(f"job_{i}"))
    assert await b.take_over("job_0")  # e.g. a cancel through B
    assert await a.renew_leases() == {"job_0"}
    await a.release_jobs(["job_1", "job_2"])
    assert set(a.held()) == {"job_3"}
    assert sorted(j.id for j in await b.claim_jobs(10)) == ["job_1", "job_2"]
    assert set(b.held()) == {"job_0", "job_1", "job_2"}
    view = await a.heartbeat()
    assert view.open_jobs == 4 and view.replicas == 2 and not view.lapsed
    await a.retire()
    assert a.held() == {}
    assert [j.id for j in await b.claim_jobs(10)] == ["job_3"]
    assert (await b.heartbeat()).replicas == 1
    # a terminal job is nobody's to watch
    await b.record_status("job_3", status(State.SUCCEEDED), checked_at=T0)
    assert "job_3" not in b.held() and not await a.take_over("job_3")


async def test_concurrent_claims_never_share_a_job(replicas) -> None:
    seed = await replicas("seed")
    for i in range(120):
        await seed.create_job(job(f"job_{i:03d}"))
    await seed.release_jobs(list(seed.held()))
    claimers = [await replicas(f"r{i}") for i in range(3)]
    batches = await asyncio.gather(*(c.claim_jobs(50) for c in claimers))
    ids = [j.id for batch in batches for j in batch]
    assert len(ids) == len(set(ids)) == 120
    assert all(0 < len(batch) <= 50 for batch in batches)


async def test_every_replica_hears_every_transition(replicas) -> None:
    a = await replicas("a")
    b = await replicas("b")
    heard: list[tuple[str, int, bool]] = []
    connected = asyncio.Event()

    def on_connected(again: bool) -> None:
        connected.set()

    listener = asyncio.create_task(b.listen(lambda *n: heard.append(n), on_connected))
    try:
        await asyncio.wait_for(connected.wait(), 10)
        await a.create_job(job("job_hook", webhook_url="https://h.example/"))
        await a.create_job(job("job_plain"))
        await a.record_status("job_plain", status(State.RUNNING), checked_at=T0)
        await a.record_status("job_plain", status(State.RUNNING), checked_at=T0)  # no transition, no notice
        await a.record_status("job_hook", status(State.SUCCEEDED), checked_at=T0)
        for _ in range(100):
            if len(heard) >= 4:
                break
            await asyncio.sleep(0.05)
        assert heard == [("job_hook", 1, True), ("job_plain", 1, False), ("job_plain", 2, False), ("job_hook", 2, True)]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_webhook_events_are_leased_to_one_replica(replicas) -> None:
    a = await replicas("a")
    b = await replicas("b")
    await a.create_job(job("job_a", webhook_url="https://h.example/"))
    await a.record_status("job_a", status(State.RUNNING), checked_at=T0)
    assert [e.id for e in await a.due_events(T0)] == ["evt_job_a_1"]
    assert await b.due_events(T0) == []  # leased to A
    assert [e.id for e in await a.due_events(T0)] == ["evt_job_a_1"]  # A's own lease
    assert await delivered(a, "evt_job_a_1", T0)
    assert [e.id for e in await b.due_events(T0)] == ["evt_job_a_2"]  # in order, now B's
    # a try A made anyway is logged, but does not move B's event (still due now, not in a day)
    assert not await failed(a, "evt_job_a_2", T0, T0 + timedelta(days=1), "not A's")
    [due] = await b.due_events(T0)
    assert due.id == "evt_job_a_2" and due.next_attempt_at == T0 and due.step == 0
    assert await delivered(b, "evt_job_a_2", T0)
    assert await a.pending_event_count() == 0


async def test_a_heartbeat_says_when_a_due_event_is_held_by_no_replica(replicas) -> None:
    a = await replicas("a")
    b = await replicas("b")
    assert not (await b.heartbeat()).events_waiting
    await a.create_job(job("job_a", webhook_url="https://h.example/"))
    await a.record_status("job_a", status(State.RUNNING), checked_at=T0)  # a second event, behind the first
    assert (await b.heartbeat()).events_waiting  # due, and nobody holds it: a dispatcher should look
    assert [e.id for e in await a.due_events(T0)] == ["evt_job_a_1"]
    assert not (await b.heartbeat()).events_waiting  # A holds it (the event behind it waits its turn)
    assert await delivered(a, "evt_job_a_1", T0)
    assert (await b.heartbeat()).events_waiting  # the next one is the job's head now
    await a.due_events(T0)
    assert await delivered(a, "evt_job_a_2", T0)
    assert not (await b.heartbeat()).events_waiting


async def test_url_options(tmp_path: Path) -> None:
    store = open_store(
        "postgresql://gw:pw@db.example:5433/gw?lease_s=7.5&replica=r1&sslmode=disable", state_dir=tmp_path
    )
    assert isinstance(store, PostgresStore)
    assert (store.lease_s, store.replica) == (7.5, "r1")
    assert store.db.dsn == "postgresql://gw:pw@db.example:5433/gw?sslmode=disable"
    assert isinstance(open_store("postgres://db/gw", state_dir=tmp_path), PostgresStore)
    with pytest.raises(ValueError, match="lease_s"):
        open_store("postgresql://db/gw?lease_s=soon", state_dir=tmp_path)
    with pytest.raises(ValueError, match="lease_s"):
        open_store("postgresql://db/gw?lease_s=0.1", state_dir=tmp_path)
    with pytest.raises(ValueError, match="host or a database"):
        open_store("postgresql://", state_dir=tmp_path)


async def test_an_unreachable_database_is_unavailable(tmp_path: Path) -> None:
    store = open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/gw", state_dir=tmp_path)
    with pytest.raises(StoreUnavailable):
        await store.open()


async def test_jobs_let_go_during_an_outage_are_claimable_at_once(replicas) -> None:
    a = await replicas("a")
    await a.create_job(job("job_1"))
    assert a.forget_held() == ["job_1"]  # no renewal for a lease time: stop considering it held
    with pytest.raises(LeaseLost):
        await a.touch("job_1", checked_at=T0)
    assert await a.renew_leases() == set()  # the row still named A: freed, not silently extended
    claimed = await a.claim_jobs(5)
    assert [j.id for j in claimed] == ["job_1"]
    await a.touch("job_1", checked_at=T0)


async def test_transition_numbers_follow_commit_order_across_replicas(replicas) -> None:
    """Replicas writing at once: a reader following `job_events` from its last number sees every transition exactly
    once (a number below one already seen never commits later), and the numbers have no holes."""
    a = await replicas("a")
    b = await replicas("b")
    reader = await replicas("reader")
    seen: list[int] = []
    writing = True

    async def follow() -> None:
        after = 0
        while writing or after < await reader.last_event_seq():
            for event in await reader.job_events("t1", after=after, limit=7):
                seen.append(event.seq)
                after = event.seq
            await asyncio.sleep(0)

    async def write(store: PostgresStore, prefix: str) -> None:
        for i in range(15):
            await store.create_job(job(f"job_{prefix}{i}"))
            await store.record_status(f"job_{prefix}{i}", status(State.RUNNING), checked_at=T0)

    follower = asyncio.create_task(follow())
    await asyncio.gather(write(a, "a"), write(b, "b"))
    writing = False
    await follower
    assert seen == list(range(1, 61))  # 30 jobs, two transitions each: in order, none skipped, none twice
    assert await reader.last_event_seq() == 60
