"""The store's contract for Idempotency-Key reservations and for finding who holds a vendor job
(`Store.reserve_idempotency`, `renew_idempotency`, `release_idempotency`, `jobs_with_vendor_ref`), run against
every backend through the `store` fixture (tests/store/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.states import CanonicalStatus, State
from gateway.store import open_store
from gateway.store.base import IdempotencyMismatch, Store
from gateway.store.records import JobRecord

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
KEY = ("t1", "k", "hash-a")


def job(job_id: str, *, tenant: str = "t1", provider: str = "camb", ref: dict[str, Any] | None = None) -> JobRecord:
    return JobRecord(
        id=job_id,
        tenant=tenant,
        provider=provider,
        vendor_ref=ref if ref is not None else {"task_id": job_id},
        status=CanonicalStatus(state=State.QUEUED),
        created_at=T0,
        updated_at=T0,
    )


async def test_one_owner_reserves_others_see_it_held_until_it_ends(store: Store) -> None:
    first = await store.reserve_idempotency(KEY, owner="a", now=T0, lease_s=30)
    assert first.reserved and first.job is None
    again = await store.reserve_idempotency(KEY, owner="a", now=T0, lease_s=30)
    assert again.reserved  # the owner's own reservation is its own
    other = await store.reserve_idempotency(KEY, owner="b", now=T0 + timedelta(seconds=10), lease_s=30)
    assert not other.reserved and other.job is None and other.held_until == T0 + timedelta(seconds=30)
    with pytest.raises(IdempotencyMismatch) as info:
        await store.reserve_idempotency(("t1", "k", "hash-b"), owner="c", now=T0, lease_s=30)
    assert info.value.job_id is None
    _, is_new = await store.create_job(job("job_a"), idempotency=KEY)
    assert is_new
    done = await store.reserve_idempotency(KEY, owner="b", now=T0, lease_s=30)
    assert done.job is not None and done.job.id == "job_a" and not done.reserved
    assert not await store.renew_idempotency("t1", "k", owner="a", now=T0, lease_s=30)  # the job ended it
    with pytest.raises(IdempotencyMismatch) as info:
        await store.reserve_idempotency(("t1", "k", "hash-b"), owner="c", now=T0, lease_s=30)
    assert info.value.job_id == "job_a"


async def test_an_expired_reservation_is_taken_over_and_renewal_keeps_one_alive(store: Store) -> None:
    await store.reserve_idempotency(KEY, owner="dead", now=T0, lease_s=30)
    await store.reserve_idempotency(("t1", "live", "h"), owner="live", now=T0, lease_s=30)
    later = T0 + timedelta(seconds=25)
    assert await store.renew_idempotency("t1", "live", owner="live", now=later, lease_s=30)
    after = T0 + timedelta(seconds=31)
    assert (await store.reserve_idempotency(("t1", "live", "h"), owner="x", now=after, lease_s=30)).held_until
    taken = await store.reserve_idempotency(KEY, owner="new", now=after, lease_s=30)
    assert taken.reserved
    assert not await store.renew_idempotency("t1", "k", owner="dead", now=after, lease_s=30)
    assert await store.renew_idempotency("t1", "k", owner="new", now=after, lease_s=30)


async def test_release_frees_the_key_but_only_for_its_owner(store: Store) -> None:
    await store.reserve_idempotency(KEY, owner="a", now=T0, lease_s=30)
    await store.release_idempotency("t1", "k", owner="b")
    assert not (await store.reserve_idempotency(KEY, owner="b", now=T0, lease_s=30)).reserved
    await store.release_idempotency("t1", "k", owner="a")
    assert (await store.reserve_idempotency(KEY, owner="b", now=T0, lease_s=30)).reserved
    assert (await store.reserve_idempotency(("t2", "k", "hash-a"), owner="c", now=T0, lease_s=30)).reserved


async def test_concurrent_reservations_have_exactly_one_winner(store: Store, store_url: str, tmp_path: Path) -> None:
    async with open_store(store_url, state_dir=tmp_path) as twin:  # its own connections, as another replica's
        claims = await asyncio.gather(
            *((store if i % 2 else twin).reserve_idempotency(KEY, owner=f"o{i}", now=T0, lease_s=30) for i in range(20))
        )
    assert sum(claim.reserved for claim in claims) == 1
    assert all(claim.held_until == T0 + timedelta(seconds=30) for claim in claims if not claim.reserved)


async def test_a_job_stored_meanwhile_is_found_not_reserved_again(store: Store) -> None:
    """The holder stores the key's job between another request's reads: that request gets the job."""
    await store.reserve_idempotency(KEY, owner="a", now=T0, lease_s=30)
    await store.create_job(job("job_a"), idempotency=KEY)
    claims = await asyncio.gather(
        *(store.reserve_idempotency(KEY, owner=f"o{i}", now=T0, lease_s=30) for i in range(5))
    )
    assert all(claim.job is not None and claim.job.id == "job_a" for claim in claims)


async def test_jobs_with_vendor_ref_agree_on_shared_keys(store: Store) -> None:
    await store.create_job(job("job_a", tenant="t1", ref={"task_id": "x"}))
    await store.create_job(job("job_b", tenant="t2", ref={"task_id": "y", "run_id": 5}))
    await store.create_job(job("job_c", tenant="t1", provider="other", ref={"task_id": "x"}))
    await store.create_job(job("job_d", tenant="t3", provider="datafold", ref={"project_id": 1, "job_id": "j"}))

    async def ids(provider: str, ref: dict[str, Any]) -> list[str]:
        return [j.id for j in await store.jobs_with_vendor_ref(provider, ref)]

    assert await ids("camb", {"task_id": "x"}) == ["job_a"]
    assert await ids("camb", {"task_id": "x", "run_id": 9}) == ["job_a"]  # the stored ref has no run_id yet
    assert await ids("camb", {"task_id": "y"}) == ["job_b"]
    assert await ids("camb", {"task_id": "y", "run_id": 5}) == ["job_b"]
    assert await ids("camb", {"task_id": "y", "run_id": 6}) == []
    assert await ids("camb", {"task_id": "z"}) == []
    assert await ids("camb", {"other": "x"}) == []  # no key in common
    assert await ids("camb", {}) == []
    assert await ids("datafold", {"project_id": 1, "job_id": "j"}) == ["job_d"]
    assert await ids("datafold", {"project_id": 2, "job_id": "j"}) == []
    assert await ids("datafold", {"project_id": "1", "job_id": "j"}) == []  # types count
    await store.record_status(
        "job_a", CanonicalStatus(state=State.RUNNING), checked_at=T0, vendor_ref={"task_id": "x", "run_id": 7}
    )
    assert await ids("camb", {"task_id": "x", "run_id": 9}) == []
    assert await ids("camb", {"task_id": "x"}) == ["job_a"]
