"""The store contract: every backend (the embedded SQLite store, the PostgreSQL store) passes these same tests,
through the `store` fixture parametrized over both (tests/store/conftest.py). Backend-specific behaviour lives in
test_sqlite_store.py and test_postgres_store.py."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import itertools
import json
import os
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from store_records import T0, delivered, failed, job, status

from gateway.states import CanonicalStatus, Issue, JobError, StaleReason, State
from gateway.store import IdempotencyMismatch, JobExists, JobNotFound, JobRecord, Store, StoreError, open_store
from gateway.store.records import Check, DeliveryAttempt

# jobs, idempotency, tenancy


async def test_job_round_trips_every_field(store: Store) -> None:
    record = JobRecord(
        id="job_a",
        tenant="t1",
        provider="segment_qa",
        vendor_ref={"job_id": "v-1", "nested": {"ü": [1, 2]}},
        status=CanonicalStatus(
            state=State.ACTION_REQUIRED,
            vendor_status="needs_review",
            stage="s",
            progress=40,
            error=JobError(code="x", message="m", retryable=True),
            issues=[Issue(code="blocked", target="seg-1")],
        ),
        created_at=datetime(2024, 5, 1, 16, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        updated_at=T0,
        checked_at=T0,
        metadata={"k": "v"},
        webhook_url="https://hooks.example/x",
        route="text",
        attempts=[{"provider": "camb", "error": "upstream_error"}],
    )
    created, is_new = await store.create_job(record)
    assert is_new and created.version == 1
    loaded = await store.get_job("job_a")
    assert loaded == created
    assert loaded.model_dump() == {**record.model_dump(), "version": 1}
    assert loaded.created_at == datetime(2024, 5, 1, 14, 0, 0, 1, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError):
        job("job_x", created_at=datetime(2024, 1, 1))


async def test_duplicate_job_id_is_refused(store: Store) -> None:
    await store.create_job(job("job_a"))
    with pytest.raises(JobExists):
        await store.create_job(job("job_a"))


async def test_idempotency_same_body_same_job_other_body_mismatch(store: Store) -> None:
    _, created = await store.create_job(job("job_a"), idempotency=("t1", "key-1", "hash-1"))
    assert created
    again, created = await store.create_job(job("job_b"), idempotency=("t1", "key-1", "hash-1"))
    assert not created and again.id == "job_a"
    assert await store.get_job("job_b") is None
    with pytest.raises(IdempotencyMismatch) as info:
        await store.create_job(job("job_c"), idempotency=("t1", "key-1", "hash-2"))
    assert info.value.job_id == "job_a"
    assert await store.get_job("job_c") is None
    found = await store.find_idempotent("t1", "key-1")
    assert found is not None and found[0] == "hash-1" and found[1].id == "job_a"
    assert await store.find_idempotent("t1", "other") is None
    # keys are per tenant
    other, created = await store.create_job(job("job_d", tenant="t2"), idempotency=("t2", "key-1", "hash-2"))
    assert created and other.id == "job_d"
    with pytest.raises(ValueError):
        await store.create_job(job("job_e", tenant="t2"), idempotency=("t1", "key-9", "h"))


async def test_concurrent_creates_with_one_key_make_one_job(store: Store, store_url: str, tmp_path: Path) -> None:
    # a second store on the same database: its own connections, as another process would have
    async with open_store(store_url, state_dir=tmp_path) as twin:
        results = await asyncio.gather(
            *(
                (store if i % 2 else twin).create_job(job(f"job_{i}"), idempotency=("t1", "race", "h"))
                for i in range(20)
            )
        )
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1
    jobs, _ = await store.list_jobs("t1", limit=100)
    assert len(jobs) == 1


async def test_the_key_constraint_decides_a_race_the_check_missed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.create_job(job("job_a"), idempotency=("t1", "race", "h"))
    backend = type(store)
    real = backend._idempotent  # type: ignore[attr-defined]
    calls = 0

    def blind(first: bool) -> bool:
        nonlocal calls
        calls += 1
        return first and calls == 1

    if inspect.iscoroutinefunction(real):

        async def blind_once(conn: Any, tenant: str, key: str) -> Any:
            return None if blind(True) else await real(conn, tenant, key)

    else:

        def blind_once(conn: Any, tenant: str, key: str) -> Any:  # type: ignore[misc]
            return None if blind(True) else real(conn, tenant, key)

    monkeypatch.setattr(backend, "_idempotent", staticmethod(blind_once))
    record, created = await store.create_job(job("job_b"), idempotency=("t1", "race", "h"))
    assert (record.id, created) == ("job_a", False)
    calls = 0
    with pytest.raises(IdempotencyMismatch):
        await store.create_job(job("job_c"), idempotency=("t1", "race", "other"))
    assert calls == 2
    monkeypatch.undo()
    assert await store.get_job("job_b") is None and await store.get_job("job_c") is None
    assert await store.transitions("job_b") == []


async def test_tenants_see_only_their_jobs(store: Store) -> None:
    await store.create_job(job("job_a", tenant="t1"))
    await store.create_job(job("job_b", tenant="t2"))
    assert (await store.get_job("job_a", tenant="t1")) is not None
    assert await store.get_job("job_a", tenant="t2") is None
    assert (await store.get_job("job_a")) is not None
    assert [j.id for j in (await store.list_jobs("t2"))[0]] == ["job_b"]
    assert (await store.list_jobs("nobody")) == ([], None)


# listing


async def test_pagination_is_newest_first_without_gaps_or_duplicates(store: Store) -> None:
    expected = []
    for i in range(45):
        # groups of three share a created_at: the id breaks the tie
        created = T0 + timedelta(seconds=i // 3)
        provider = "camb" if i % 2 else "datafold"
        record = job(f"job_{i:03d}", created_at=created, provider=provider)
        await store.create_job(record)
        expected.append(record)
        if i % 5 == 0:
            await store.record_status(record.id, status(State.RUNNING), checked_at=created)
    await store.create_job(job("job_other", tenant="t2"))
    expected.sort(key=lambda r: (r.created_at, r.id), reverse=True)

    async def all_pages(limit: int, **filters: Any) -> list[str]:
        ids: list[str] = []
        cursor = None
        while True:
            page, cursor = await store.list_jobs("t1", limit=limit, cursor=cursor, **filters)
            assert len(page) <= limit
            ids.extend(r.id for r in page)
            if cursor is None:
                return ids

    for limit in (1, 7, 15, 45, 200):
        assert await all_pages(limit) == [r.id for r in expected]
    assert await all_pages(4, provider="camb") == [r.id for r in expected if r.provider == "camb"]
    running = [r.id for r in expected if int(r.id[-3:]) % 5 == 0]
    assert await all_pages(2, state=State.RUNNING) == running
    assert await all_pages(3, state="queued", provider="datafold") == [
        r.id for r in expected if r.provider == "datafold" and r.id not in running
    ]
    # a full last page says there is nothing more
    page, cursor = await store.list_jobs("t1", limit=45)
    assert len(page) == 45 and cursor is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps({"a": 1}).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1.5, "job"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([True, "job"]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2, 3]).encode()).decode(),
        "A" * 5000,
    ],
)
async def test_malformed_cursor_is_a_value_error(store: Store, cursor: str) -> None:
    with pytest.raises(ValueError):
        await store.list_jobs("t1", cursor=cursor)


async def test_bad_list_arguments(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.list_jobs("t1", limit=0)
    with pytest.raises(ValueError):
        await store.list_jobs("t1", state="sleeping")


# transitions


async def test_each_change_is_one_version(store: Store) -> None:
    await store.create_job(job("job_a"))
    t = T0

    async def observe(s: CanonicalStatus) -> tuple[JobRecord, bool]:
        nonlocal t
        t += timedelta(seconds=1)
        return await store.record_status("job_a", s, checked_at=t)

    steps = [
        (status(State.QUEUED), False),  # nothing changed
        (status(State.RUNNING), True),  # state
        (status(State.RUNNING), False),
        (status(State.RUNNING, stage="upload"), True),  # stage
        (status(State.RUNNING, stage="upload", progress=10), True),  # progress
        (status(State.RUNNING, stage="upload", progress=10, issues=[Issue(code="x")]), False),  # not a key field
        (status(State.RUNNING, stage="upload", progress=10, vendor_status="processing"), True),  # vendor status
        (status(State.SUCCEEDED, vendor_status="done", progress=100), True),
    ]
    version = 1
    for s, expect in steps:
        record, transitioned = await observe(s)
        assert transitioned is expect
        version += expect
        assert record.version == version
        assert record.checked_at == t and not record.stale
    record = await store.get_job("job_a")
    assert record.version == 6 and record.state is State.SUCCEEDED and record.terminal
    assert record.finished_at == t and record.updated_at == t

    history = await store.transitions("job_a")
    assert [h.version for h in history] == [1, 2, 3, 4, 5, 6]
    assert [h.state for h in history] == [State.QUEUED] + [State.RUNNING] * 4 + [State.SUCCEEDED]
    assert history[3].progress == 10 and history[3].stage == "upload" and history[4].vendor_status == "processing"
    assert history[-1].status == record.status
    assert history[0].at == T0
    assert all(a.at < b.at for a, b in itertools.pairwise(history))
    assert [h.version for h in await store.transitions("job_a", after_version=4)] == [5, 6]
    assert history[-1].public() == {
        "version": 6,
        "at": history[-1].at.isoformat().replace("+00:00", "Z"),
        "state": "succeeded",
        "vendor_status": "done",
        "stage": None,
        "progress": 100,
    }


async def test_terminal_is_sticky_and_flips_are_anomalies(store: Store) -> None:
    await store.create_job(job("job_a"))
    done, _ = await store.record_status("job_a", status(State.SUCCEEDED), checked_at=T0)
    assert done.version == 2
    record, transitioned = await store.record_status("job_a", status(State.RUNNING), checked_at=T0)
    assert not transitioned and record.state is State.SUCCEEDED and record.anomalies == 1
    record, transitioned = await store.record_status("job_a", status(State.FAILED), checked_at=T0)
    assert not transitioned and record.state is State.SUCCEEDED and record.anomalies == 2
    # the same terminal state with other details: frozen, but not an anomaly
    record, transitioned = await store.record_status(
        "job_a", status(State.SUCCEEDED, vendor_status="done"), checked_at=T0
    )
    assert not transitioned and record.anomalies == 2 and record.status.vendor_status is None
    stored = await store.get_job("job_a")
    assert stored.version == 2 and stored.anomalies == 2 and stored.finished_at == T0
    assert len(await store.transitions("job_a")) == 2


async def test_record_status_updates_vendor_ref_and_raises_for_unknown_job(store: Store) -> None:
    await store.create_job(job("job_a"))
    record, transitioned = await store.record_status(
        "job_a", status(State.QUEUED), checked_at=T0, vendor_ref={"task_id": "job_a", "run_id": 7}
    )
    assert not transitioned and record.vendor_ref == {"task_id": "job_a", "run_id": 7}
    assert (await store.get_job("job_a")).vendor_ref["run_id"] == 7
    with pytest.raises(JobNotFound):
        await store.record_status("job_nope", status(), checked_at=T0)


async def test_mark_stale(store: Store) -> None:
    await store.create_job(job("job_a"))
    later = T0 + timedelta(minutes=1)
    record = await store.mark_stale("job_a", checked_at=later)
    assert record.stale and record.checked_at == later and record.version == 1
    assert (await store.get_job("job_a")).stale
    assert (await store.mark_stale("job_a")).checked_at == later
    record, _ = await store.record_status("job_a", status(State.QUEUED), checked_at=later)
    assert not record.stale
    assert await store.mark_stale("job_nope") is None


async def test_save_checks_applies_many_freshness_notes_without_a_transition(store: Store) -> None:
    for name in ("job_a", "job_b", "job_c"):
        await store.create_job(job(name))
    later, finish = T0 + timedelta(minutes=5), T0 + timedelta(minutes=9)
    quota = StaleReason(code="upstream_quota_exceeded", message="used up")
    lost = await store.save_checks(
        [
            Check("job_a", later, False, None, finish),
            Check("job_b", None, True, quota),
            Check("job_nope", later, False),  # unknown: skipped
            Check("job_c", T0 + timedelta(minutes=1), False),
            Check("job_c", None, True, quota),  # a job named twice: its later note wins
        ]
    )
    assert lost == []
    a, b, c = [await store.get_job(name) for name in ("job_a", "job_b", "job_c")]
    assert a.checked_at == later and not a.stale and a.estimated_finish_at == finish and a.version == 1
    assert b.stale and b.stale_reason == quota and b.checked_at is None and b.version == 1
    assert c.stale and c.stale_reason == quota and c.checked_at is None
    await store.save_checks([Check("job_b", later, False)])  # confirmed again: stale and its reason cleared
    b = await store.get_job("job_b")
    assert not b.stale and b.stale_reason is None and b.checked_at == later
    assert [t.version for t in await store.transitions("job_a")] == [1]
    assert await store.save_checks([]) == []


async def test_non_terminal_jobs_and_counts(store: Store) -> None:
    for i, state in enumerate([State.QUEUED, State.RUNNING, State.SUCCEEDED, State.FAILED, State.UNKNOWN]):
        await store.create_job(job(f"job_{i}", created_at=T0 + timedelta(seconds=i)))
        await store.record_status(f"job_{i}", status(state), checked_at=T0)
    assert [j.id for j in await store.non_terminal_jobs()] == ["job_0", "job_1", "job_4"]
    counts = await store.count_by_state()
    assert set(counts) == {s.value for s in State}
    assert counts["succeeded"] == 1 and counts["running"] == 1 and counts["cancelled"] == 0


# webhook outbox


async def test_transitions_queue_webhook_events(store: Store) -> None:
    hook = "https://hooks.example/a"
    await store.create_job(job("job_a", webhook_url=hook))
    await store.create_job(job("job_b"))  # no webhook
    for job_id in ("job_a", "job_b"):
        await store.record_status(job_id, status(State.RUNNING), checked_at=T0)
        await store.record_status(job_id, status(State.RUNNING), checked_at=T0)  # no transition, no event
        await store.record_status(job_id, status(State.SUCCEEDED), checked_at=T0)
    await store.record_status("job_a", status(State.FAILED), checked_at=T0)  # an anomaly, no event

    assert await store.pending_event_count() == 3
    events = []
    for _ in range(3):  # in order per job: each event is due once the one before it is delivered
        due = await store.due_events(T0, limit=10)
        assert len(due) == 1
        events += due
        assert await delivered(store, due[0].id, T0)
    assert [(e.id, e.job_id, e.version) for e in events] == [
        ("evt_job_a_1", "job_a", 1),
        ("evt_job_a_2", "job_a", 2),
        ("evt_job_a_3", "job_a", 3),
    ]
    assert all(e.url == hook and e.tenant == "t1" and e.attempts == 0 and e.delivered_at is None for e in events)
    # each event names a stored version of its job: its body is rendered from that transition when sent
    third = await store.get_transition("job_a", 3)
    assert third is not None and third.state is State.SUCCEEDED
    assert await store.get_transition("job_a", 4) is None


async def test_outbox_due_reschedule_delivered(store: Store) -> None:
    await store.create_job(
        job("job_a", webhook_url="https://h.example/"),
    )
    await delivered(store, "evt_job_a_1", T0)
    await store.record_status("job_a", status(State.RUNNING), checked_at=T0)
    await store.record_status("job_a", status(State.SUCCEEDED), checked_at=T0 + timedelta(seconds=1))
    assert await store.due_events(T0 - timedelta(seconds=1)) == []
    assert [e.id for e in await store.due_events(T0)] == ["evt_job_a_2"]
    assert [e.id for e in await store.due_events(T0 + timedelta(seconds=5), limit=1)] == ["evt_job_a_2"]

    retry_at = T0 + timedelta(seconds=30)
    assert await failed(store, "evt_job_a_2", T0, retry_at, "HTTP 500")
    # evt_job_a_3 is due, but waits behind the failed evt_job_a_2 of the same job
    assert await store.due_events(T0 + timedelta(seconds=5)) == []
    due = await store.due_events(retry_at)
    assert [e.id for e in due] == ["evt_job_a_2"]
    assert due[0].attempts == 1 and due[0].last_error == "HTTP 500" and due[0].next_attempt_at == retry_at

    assert await delivered(store, "evt_job_a_2", retry_at)
    assert [e.id for e in await store.due_events(retry_at)] == ["evt_job_a_3"]
    assert await delivered(store, "evt_job_a_3", retry_at)
    assert await store.pending_event_count() == 0
    # a late failure (e.g. from another replica) never revives a delivered event; the try is still logged
    assert not await failed(store, "evt_job_a_2", retry_at, retry_at, "late")
    assert await store.due_events(retry_at + timedelta(days=1)) == []
    assert await store.pending_event_count() == 0
    [_, second, _] = await store.job_deliveries("job_a")
    assert [(a.number, a.status) for a in second.attempts] == [(1, 500), (2, 204), (3, 500)]
    with pytest.raises(StoreError, match="no webhook event"):
        await store.record_attempt(
            DeliveryAttempt(event_id="evt_unknown", number=1, at=T0, duration_ms=0, status=200), generation=0
        )


# durability


async def test_everything_survives_close_and_reopen(store: Store, store_url: str, tmp_path: Path) -> None:
    await store.close()
    url = store_url
    async with open_store(url, state_dir=tmp_path) as s:
        await s.create_job(job("job_a", webhook_url="https://h.example/"), idempotency=("t1", "k", "h"))
        await s.record_status("job_a", status(State.SUCCEEDED), checked_at=T0)
        await s.save_result("job_a", {"outputs": [{"target": "hallo"}]})
        await s.save_artifact("job_a", content_type="application/pdf", filename="a.pdf", chunks=_chunks(b"%PDF", 3))
        await delivered(s, "evt_job_a_1", T0)
        await delivered(s, "evt_job_a_2", T0)
    async with open_store(url, state_dir=tmp_path) as s:
        record = await s.get_job("job_a")
        assert record.version == 2 and record.state is State.SUCCEEDED and record.result_available
        assert [t.version for t in await s.transitions("job_a")] == [1, 2]
        assert (await s.find_idempotent("t1", "k"))[1].id == "job_a"
        assert await s.get_result("job_a") == {"outputs": [{"target": "hallo"}]}
        artifact = await s.get_artifact("job_a")
        assert artifact.path.read_bytes() == b"%PDF" * 3 and artifact.filename == "a.pdf"
        assert await s.pending_event_count() == 0
        assert await s.non_terminal_jobs() == []


# results and artifacts


async def _chunks(block: bytes, count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield block
        await asyncio.sleep(0)


async def test_results_are_kept(store: Store) -> None:
    await store.create_job(job("job_a"))
    assert await store.get_result("job_a") is None
    await store.save_result("job_a", {"outputs": [], "vendor": {"ü": 1}})
    await store.save_result("job_a", {"outputs": [{"target": "x"}], "vendor": {"ü": 2}})
    assert await store.get_result("job_a") == {"outputs": [{"target": "x"}], "vendor": {"ü": 2}}
    assert (await store.get_job("job_a")).result_available
    with pytest.raises(JobNotFound):
        await store.save_result("job_nope", {})


async def test_a_large_artifact_is_streamed_to_disk(store: Store, tmp_path: Path) -> None:
    await store.create_job(job("job_a"))
    block = os.urandom(64 * 1024)
    count = 128  # 8 MiB
    tracemalloc.start()
    try:
        artifact = await store.save_artifact(
            "job_a", content_type="application/pdf", filename="out.pdf", chunks=_chunks(block, count)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 1024 * 1024  # never the whole file in memory
    assert artifact.size == len(block) * count
    assert artifact.path.parent == tmp_path / "artifacts"
    digest = hashlib.sha256(block * count).hexdigest()
    assert hashlib.sha256(artifact.path.read_bytes()).hexdigest() == digest
    stored = await store.get_artifact("job_a")
    assert stored == artifact
    assert [p.name for p in (tmp_path / "artifacts").iterdir()] == [artifact.path.name]

    # replaced atomically by a newer one
    await store.save_artifact("job_a", content_type="text/plain", filename=None, chunks=_chunks(b"x", 3))
    replaced = await store.get_artifact("job_a")
    assert replaced.path.read_bytes() == b"xxx" and replaced.content_type == "text/plain" and replaced.size == 3


async def test_a_failed_artifact_download_leaves_nothing(store: Store, tmp_path: Path) -> None:
    await store.create_job(job("job_a"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"a" * 300_000
        raise ConnectionResetError("vendor went away")

    with pytest.raises(ConnectionResetError):
        await store.save_artifact("job_a", content_type="application/pdf", filename="a.pdf", chunks=broken())
    assert await store.get_artifact("job_a") is None
    assert list((tmp_path / "artifacts").iterdir()) == []
    with pytest.raises(JobNotFound):
        await store.save_artifact("job_nope", content_type="x/y", filename=None, chunks=_chunks(b"x", 1))
    assert await store.get_artifact("job_nope") is None


# lifecycle


async def test_ping_and_closed_store(store: Store) -> None:
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    await store.close()  # idempotent


# the operator's view and the texts kept per job


async def test_operator_view_across_tenants(store: Store) -> None:
    for i, (tenant, provider) in enumerate([("t1", "camb"), ("t2", "camb"), ("t2", "datafold"), ("t3", "camb")]):
        await store.create_job(job(f"job_{i}", tenant=tenant, provider=provider, created_at=T0 + timedelta(seconds=i)))
    await store.record_status("job_1", status(State.RUNNING), checked_at=T0)
    page, cursor = await store.operator_jobs(limit=3)
    assert [j.id for j in page] == ["job_3", "job_2", "job_1"] and cursor is not None
    rest, cursor = await store.operator_jobs(limit=3, cursor=cursor)
    assert [j.id for j in rest] == ["job_0"] and cursor is None
    assert [j.id for j in (await store.operator_jobs(tenant="t2"))[0]] == ["job_2", "job_1"]
    assert [j.id for j in (await store.operator_jobs(state="running"))[0]] == ["job_1"]
    assert [j.id for j in (await store.operator_jobs(provider="datafold"))[0]] == ["job_2"]
    counts = await store.count_by_provider_state()
    assert set(counts) == {"camb", "datafold"} and set(counts["camb"]) == {s.value for s in State}
    assert counts["camb"]["queued"] == 2 and counts["camb"]["running"] == 1 and counts["datafold"]["queued"] == 1
    with pytest.raises(ValueError):
        await store.operator_jobs(cursor="nonsense!")


async def test_sources_and_webhook_events_of_a_job(store: Store) -> None:
    await store.create_job(job("job_a", webhook_url="https://h.example/"), sources=["Hallo", "Welt ü"])
    await store.create_job(job("job_b"))
    await store.record_status("job_a", status(State.RUNNING), checked_at=T0)
    await delivered(store, "evt_job_a_1", T0)
    assert await store.get_sources("job_a") == ["Hallo", "Welt ü"]
    assert await store.get_sources("job_b") is None
    events = await store.webhook_events("job_a")
    assert [(e.id, e.delivered_at) for e in events] == [("evt_job_a_1", T0), ("evt_job_a_2", None)]
    assert await store.webhook_events("job_b") == []
