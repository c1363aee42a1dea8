"""The store contract for choosing vendors, on every backend: the usage ledger (one entry per job and attempt,
written with the transition that ends the attempt), fail-over to a next attempt, the input kept for it, shadow
links, and the daily job counts budgets reserve (atomic under concurrent submits)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from store_records import T0, job, status

from gateway.states import CanonicalStatus, JobError, State
from gateway.store import Store
from gateway.store.ledger import from_micros

FAILED_TIMEOUT = CanonicalStatus(
    state=State.FAILED, vendor_status="TIMEOUT", error=JobError(code="timeout", message="too slow", retryable=True)
)


def result(job_id: str, **usage: Any) -> dict[str, Any]:
    return {"job_id": job_id, "provider": "segment_qa", "state": "succeeded", "outputs": [], "usage": usage or None}


async def finish(store: Store, job_id: str, state: State = State.SUCCEEDED, at_s: float = 10.0) -> None:
    await store.record_status(job_id, status(State.RUNNING), checked_at=T0 + timedelta(seconds=1))
    await store.record_status(job_id, status(state), checked_at=T0 + timedelta(seconds=at_s))


async def test_a_terminal_transition_records_the_kept_results_usage_once(store: Store) -> None:
    await store.create_job(job("job_a", provider="segment_qa"))
    usage = {
        "input_tokens": 120,
        "output_tokens": 80,
        "cost": {"amount": 0.0123, "currency": "EUR"},
        "units": [{"unit": "words", "quantity": 7}, {"unit": "segments", "quantity": 2}],
    }
    await store.save_result("job_a", result("job_a", **usage))
    await finish(store, "job_a", at_s=12.5)
    # the vendor says it again, and again differently (an anomaly): the attempt is still counted once
    await store.record_status("job_a", status(State.SUCCEEDED), checked_at=T0 + timedelta(seconds=20))
    await store.record_status("job_a", status(State.FAILED), checked_at=T0 + timedelta(seconds=21))
    await store.save_result("job_a", result("job_a", **usage))
    (entry,) = await store.job_usage("job_a")
    assert (entry.job_id, entry.attempt, entry.tenant, entry.provider) == ("job_a", 1, "t1", "segment_qa")
    assert entry.state is State.SUCCEEDED and entry.final and not entry.shadow and entry.error_code is None
    assert (entry.input_tokens, entry.output_tokens) == (120, 80)
    assert entry.cost_micros == 12_300 and from_micros(12_300) == Decimal("0.0123") and entry.currency == "EUR"
    assert entry.units == {"words": 7, "segments": 2}
    assert entry.submitted_at == T0 and entry.duration_s == 12.5


async def test_a_job_without_usage_is_in_the_ledger_with_its_state_and_error(store: Store) -> None:
    await store.create_job(job("job_f"))
    await store.record_status(
        "job_f",
        CanonicalStatus(state=State.FAILED, error=JobError(code="vendor_error", message="no")),
        checked_at=T0 + timedelta(seconds=3),
    )
    (entry,) = await store.job_usage("job_f")
    assert entry.state is State.FAILED and entry.error_code == "vendor_error"
    assert entry.cost_micros is None and entry.input_tokens is None and entry.units == {}
    # a job created terminal (e.g. attached after it ended) is counted too
    await store.create_job(job("job_t", state=State.CANCELLED))
    assert [e.state for e in await store.job_usage("job_t")] == [State.CANCELLED]


async def test_no_ledger_entry_before_a_job_ends(store: Store) -> None:
    await store.create_job(job("job_r"))
    await store.record_status("job_r", status(State.RUNNING), checked_at=T0)
    assert await store.job_usage("job_r") == []
    assert await store.usage("t1", since=T0 - timedelta(days=1), until=T0 + timedelta(days=1)) == []


async def test_next_attempt_moves_the_job_on_and_records_the_ended_attempt(store: Store) -> None:
    record = job("job_m", webhook_url="https://hooks.example/m").model_copy(
        update={"route": "text", "attempts": [{"provider": "camb", "outcome": "accepted"}]}
    )
    await store.create_job(record, input="sealed-input")
    assert await store.get_input("job_m") == "sealed-input"
    await store.record_status("job_m", status(State.RUNNING), checked_at=T0 + timedelta(seconds=1))
    attempts = [
        {"provider": "camb", "outcome": "failed"},
        {"provider": "segment_qa", "outcome": "accepted", "submitted_at": (T0 + timedelta(seconds=5)).isoformat()},
    ]
    moved = await store.next_attempt(
        "job_m",
        ended=FAILED_TIMEOUT,
        provider="segment_qa",
        vendor_ref={"job_id": "qa-1"},
        private_ref=None,
        attempts=attempts,
        at=T0 + timedelta(seconds=5),
    )
    assert moved.version == 3 and moved.state is State.QUEUED and not moved.terminal
    assert moved.provider == "segment_qa" and moved.vendor_ref == {"job_id": "qa-1"} and moved.attempt == 2
    assert await store.get_job("job_m") == moved
    versions = [(t.version, t.state) for t in await store.transitions("job_m")]
    assert versions == [(1, State.QUEUED), (2, State.RUNNING), (3, State.QUEUED)]
    assert [e.version for e in await store.webhook_events("job_m")] == [1, 2, 3]
    (first,) = await store.job_usage("job_m")
    assert (first.attempt, first.provider, first.state, first.final) == (1, "camb", State.FAILED, False)
    assert first.error_code == "timeout" and first.route == "text" and first.duration_s == 5.0

    await store.save_result("job_m", result("job_m", cost={"amount": 0.5, "currency": "EUR"}))
    await store.record_status("job_m", status(State.SUCCEEDED), checked_at=T0 + timedelta(seconds=9))
    second = (await store.job_usage("job_m"))[1]
    assert (second.attempt, second.provider, second.state, second.final) == (2, "segment_qa", State.SUCCEEDED, True)
    assert second.cost_micros == 500_000 and second.duration_s == 4.0
    with pytest.raises(ValueError):
        await store.next_attempt(
            "job_m", ended=FAILED_TIMEOUT, provider="camb", vendor_ref={}, private_ref=None, attempts=[], at=T0
        )


async def test_shadow_links_round_trip(store: Store) -> None:
    primary = job("job_p").model_copy(update={"route": "text", "shadow": "job_s"})
    shadow = job("job_s", provider="segment_qa").model_copy(update={"shadow_of": "job_p"})
    await store.create_job(primary)
    await store.create_job(shadow)
    assert (await store.get_job("job_p")).shadow == "job_s"  # type: ignore[union-attr]
    assert (await store.get_job("job_s")).shadow_of == "job_p"  # type: ignore[union-attr]
    await finish(store, "job_s", State.FAILED)
    assert [e.shadow for e in await store.job_usage("job_s")] == [True]


async def test_usage_and_spend_by_tenant_and_period(store: Store) -> None:
    for index, (tenant, amount, currency) in enumerate(
        [("t1", 0.1, "EUR"), ("t1", 0.2, "EUR"), ("t1", 1.5, "USD"), ("t2", 9.0, "EUR"), ("t1", None, None)]
    ):
        job_id = f"job_{index}"
        await store.create_job(job(job_id, tenant=tenant))
        cost = {"cost": {"amount": amount, "currency": currency}} if amount is not None else {}
        await store.save_result(job_id, result(job_id, **cost))
        await finish(store, job_id, at_s=10.0 + index)
    spent = await store.spend("t1", since=T0)
    assert spent == {"EUR": 300_000, "USD": 1_500_000}  # exact: 0.1 + 0.2 is 0.3 here
    assert await store.spend("t1", since=T0 + timedelta(seconds=12)) == {"USD": 1_500_000}
    assert await store.spend("t3", since=T0) == {}
    entries = await store.usage("t1", since=T0, until=T0 + timedelta(seconds=12))
    assert [e.job_id for e in entries] == ["job_0", "job_1"]
    everything = await store.usage("t1", since=T0, until=T0 + timedelta(days=1))
    assert [e.job_id for e in everything] == ["job_0", "job_1", "job_2", "job_4"]
    assert all(e.tenant == "t1" for e in everything)


async def test_budget_job_reservations_never_pass_the_limit_under_concurrency(store: Store) -> None:
    got = await asyncio.gather(*(store.reserve_budget_job("t1", "2024-05-01", 5) for _ in range(20)))
    assert sorted(n for n in got if n is not None) == [1, 2, 3, 4, 5]
    assert got.count(None) == 15
    assert await store.budget_jobs("t1", "2024-05-01") == 5
    assert await store.budget_jobs("t2", "2024-05-01") == 0
    assert await store.reserve_budget_job("t2", "2024-05-01", 5) == 1  # another tenant counts apart
    assert await store.reserve_budget_job("t1", "2024-05-02", 5) == 1  # and another day
    await store.release_budget_job("t1", "2024-05-01")
    assert await store.budget_jobs("t1", "2024-05-01") == 4
    assert await store.reserve_budget_job("t1", "2024-05-01", 5) == 5
    assert await store.reserve_budget_job("t1", "2024-05-01", 5) is None
    assert await store.reserve_budget_job("t3", "2024-05-01", 0) is None
    await store.release_budget_job("t3", "2024-05-01")  # nothing counted: nothing to give back
    assert await store.budget_jobs("t3", "2024-05-01") == 0
