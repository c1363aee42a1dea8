"""Fail-over and the usage ledger with several replicas on one PostgreSQL database: only the replica holding a
job's lease moves it to its next attempt (the fencing token refuses the others' writes, which leave nothing
behind), and each attempt's ledger entry is written once, whichever replicas race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from store_records import T0, job, status

from gateway.states import CanonicalStatus, JobError, State
from gateway.store import LeaseLost, open_store
from gateway.store.pg import PostgresStore

TIMEOUT = CanonicalStatus(state=State.FAILED, error=JobError(code="timeout", message="slow", retryable=True))


@pytest.fixture
async def replicas(postgres_url: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    async with AsyncExitStack() as stack:

        async def open_replica(name: str) -> PostgresStore:
            store = open_store(f"{postgres_url}?replica={name}", state_dir=tmp_path / name)
            assert isinstance(store, PostgresStore)
            return await stack.enter_async_context(store)

        yield open_replica


def move(store: PostgresStore, provider: str) -> Any:
    return store.next_attempt(
        "job_1",
        ended=TIMEOUT,
        provider=provider,
        vendor_ref={"job_id": f"{provider}-1"},
        private_ref=None,
        attempts=[{"provider": "camb", "outcome": "failed"}, {"provider": provider, "outcome": "accepted"}],
        at=T0 + timedelta(seconds=5),
    )


async def test_only_the_lease_holder_moves_a_job_on_and_the_ledger_counts_once(replicas) -> None:
    a = await replicas("a")
    b = await replicas("b")
    routed = job("job_1").model_copy(
        update={"route": "text", "attempts": [{"provider": "camb", "outcome": "accepted"}]}
    )
    await a.create_job(routed)
    await a.record_status("job_1", status(State.RUNNING), checked_at=T0)
    assert await b.take_over("job_1")  # e.g. A stalled and B took its lease over
    with pytest.raises(LeaseLost):
        await move(a, "segment_qa")
    assert await a.job_usage("job_1") == [] and (await a.get_job("job_1")).version == 2  # type: ignore[union-attr]
    # both replicas race to move it on: only the holder's write applies
    outcomes = await asyncio.gather(move(a, "segment_qa"), move(b, "segment_qa"), return_exceptions=True)
    assert isinstance(outcomes[0], LeaseLost) and not isinstance(outcomes[1], BaseException)
    moved = await b.get_job("job_1")
    assert moved is not None and moved.version == 3 and moved.provider == "segment_qa" and moved.attempt == 2
    assert [t.state for t in await b.transitions("job_1")] == [State.QUEUED, State.RUNNING, State.QUEUED]
    # the ending is recorded by the holder alone, and counted once
    ended = await asyncio.gather(
        a.record_status("job_1", status(State.SUCCEEDED), checked_at=T0 + timedelta(seconds=9)),
        b.record_status("job_1", status(State.SUCCEEDED), checked_at=T0 + timedelta(seconds=9)),
        return_exceptions=True,
    )
    # A's write is refused, or (once B's made the job terminal) finds it ended: never a second transition
    assert isinstance(ended[0], LeaseLost) or ended[0][1] is False
    assert not isinstance(ended[1], BaseException) and ended[1][1] is True
    entries = await a.job_usage("job_1")
    assert [(e.attempt, e.provider, e.state, e.final) for e in entries] == [
        (1, "camb", State.FAILED, False),
        (2, "segment_qa", State.SUCCEEDED, True),
    ]
