"""What the store keeps for the provider interface's second edition (schema version 4): the vendor's estimate
of the finish, why a snapshot is stale, and the sealed private vendor_ref fields."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from store_records import sqlite_at_version

from gateway.refs import RefSealer
from gateway.states import CanonicalStatus, StaleReason, State
from gateway.store import JobRecord, Store, open_store
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_schema import MIGRATIONS

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
QUOTA = StaleReason(code="upstream_quota_exceeded", message="Quota exceeded")


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = open_store(str(tmp_path / "gw.db"), state_dir=tmp_path)
    assert isinstance(s, SqliteStore)
    async with s:
        yield s


def _job(private_ref: str | None = None) -> JobRecord:
    return JobRecord(
        id="job_1",
        tenant="t",
        provider="acme",
        vendor_ref={"document_id": "d1"},
        private_ref=private_ref,
        status=CanonicalStatus(state=State.QUEUED),
        created_at=T0,
        updated_at=T0,
    )


async def test_the_sealed_private_ref_is_kept_apart_from_the_vendor_ref(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    store = sqlite_store
    sealer = RefSealer([RefSealer.new_key()])
    sealed = sealer.seal({"document_key": "dk-secret-1"})
    await store.create_job(_job(sealed))
    got = await store.get_job("job_1")
    assert got is not None and got.vendor_ref == {"document_id": "d1"} and got.private_ref == sealed
    assert sealer.open(got.private_ref) == {"document_key": "dk-secret-1"}
    raw = (tmp_path / "gw.db").read_bytes() + (tmp_path / "gw.db-wal").read_bytes()
    assert b"dk-secret-1" not in raw  # encrypted at rest
    resealed = sealer.seal({"document_key": "dk-secret-2"})
    await store.record_status("job_1", CanonicalStatus(state=State.RUNNING), checked_at=T0, private_ref=resealed)
    assert (await store.get_job("job_1")).private_ref == resealed  # type: ignore[union-attr]


async def test_an_estimate_is_kept_by_touch_and_record_status_without_a_transition(
    store: Store,
) -> None:  # both backends (tests/store/conftest.py)
    await store.create_job(_job())
    running = CanonicalStatus(state=State.RUNNING, eta_s=30)
    job, moved = await store.record_status(
        "job_1", running, checked_at=T0, estimated_finish_at=T0 + timedelta(seconds=30)
    )
    assert moved and job.version == 2 and job.estimated_finish_at == T0 + timedelta(seconds=30)
    await store.touch("job_1", checked_at=T0 + timedelta(seconds=1), estimated_finish_at=T0 + timedelta(seconds=12))
    job = await store.get_job("job_1")
    assert job is not None and job.version == 2 and job.estimated_finish_at == T0 + timedelta(seconds=12)
    sooner = CanonicalStatus(state=State.RUNNING, eta_s=5)
    job, moved = await store.record_status(
        "job_1", sooner, checked_at=T0, estimated_finish_at=T0 + timedelta(seconds=5)
    )
    assert not moved and job.version == 2 and job.estimated_finish_at == T0 + timedelta(seconds=5)
    done = CanonicalStatus(state=State.SUCCEEDED)
    job, _ = await store.record_status("job_1", done, checked_at=T0, estimated_finish_at=T0)
    assert job.estimated_finish_at is None  # a finished job has no estimate


async def test_a_stale_reason_is_kept_until_the_vendor_answers_again(
    store: Store,
) -> None:  # both backends (tests/store/conftest.py)
    await store.create_job(_job())
    marked = await store.mark_stale("job_1", reason=QUOTA)
    assert marked is not None and marked.stale and marked.stale_reason == QUOTA
    assert (await store.get_job("job_1")).stale_reason == QUOTA  # type: ignore[union-attr]
    await store.touch("job_1", checked_at=T0)
    job = await store.get_job("job_1")
    assert job is not None and not job.stale and job.stale_reason is None
    await store.mark_stale("job_1", reason=QUOTA)
    await store.record_status("job_1", CanonicalStatus(state=State.RUNNING), checked_at=T0)
    assert (await store.get_job("job_1")).stale_reason is None  # type: ignore[union-attr]


async def test_a_version_3_database_gains_the_new_columns_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite_at_version(path, 3)
    conn.execute(
        "INSERT INTO jobs (id, tenant, provider, state, terminal, version, created_us, updated_us, vendor_ref, "
        "status, metadata, attempts) VALUES ('job_old', 't', 'camb', 'running', 0, 2, 1, 1, '{\"task_id\": \"x\"}', "
        "'{\"state\": \"running\"}', '{}', '[]')"
    )
    conn.commit()
    conn.close()
    async with open_store(str(path), state_dir=tmp_path) as store:
        assert await store.schema_version() == len(MIGRATIONS) >= 4  # type: ignore[attr-defined]
        job = await store.get_job("job_old")
    assert job is not None and job.vendor_ref == {"task_id": "x"} and job.version == 2
    assert job.private_ref is None and job.estimated_finish_at is None and job.stale_reason is None
