"""Idempotency-Key under concurrency (issue class 4): the key is reserved before the vendor is called, so
concurrent duplicates wait for the first request and never reach the vendor; a failed first request frees
the key; a reservation whose gateway died expires and is taken over, answering a clear 409 meanwhile."""

from __future__ import annotations

import asyncio

from gateway.plugins import get_providers
from gateway.server.keys import STORE
from gateway.testing.clock import FakeClock
from support.cases import load_case

CAMB = get_providers()["camb"].sim_prefix
SUBMITS = "camb POST /translate"


def submit_body(**extra):
    return {"provider": "camb", "input": load_case("camb").valid_input, **extra}


async def test_twenty_concurrent_submits_with_one_key_make_one_vendor_job(demo):
    """The issue's measurement: 20 concurrent submits, one Idempotency-Key, one body, a slow vendor."""
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "delay", "delay_s": 1.0, "count": 20})
    headers = {"Idempotency-Key": "order-4711"}
    answers = await asyncio.gather(
        *(demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers) for _ in range(20))
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 19 + [201], [(s, b.get("code")) for s, b, _ in answers]
    assert len({body["id"] for _, body, _ in answers}) == 1
    assert (await demo.vendor_requests()).get(SUBMITS) == 1  # exactly one vendor job
    [job] = await demo.listing()
    done = await demo.finish(job)
    assert done["terminal"] and done["id"] == answers[0][1]["id"]
    status, again, _ = await demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers)
    assert (status, again["id"]) == (200, job["id"])
    assert (await demo.vendor_requests()).get(SUBMITS) == 1


async def test_another_body_while_the_first_is_in_flight_is_a_mismatch_at_once(demo):
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "delay", "delay_s": 1.0, "count": 1})
    headers = {"Idempotency-Key": "k-1"}
    first = asyncio.create_task(demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers))
    await asyncio.sleep(0.3)
    other = submit_body(metadata={"other": True})
    status, body, _ = await demo.call("POST", "/v1/jobs", json=other, headers=headers)
    assert not first.done()
    assert status == 409 and body["code"] == "idempotency_mismatch"
    status, job, _ = await first
    assert status == 201
    assert (await demo.vendor_requests()).get(SUBMITS) == 1
    await demo.finish(job)


async def test_a_failed_first_request_frees_the_key_for_the_next(demo):
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_500", "count": 1})
    headers = {"Idempotency-Key": "k-2"}
    status, body, _ = await demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers)
    assert status == 502 and body["code"] == "upstream_error"
    assert await demo.listing() == []
    status, job, _ = await demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers)
    assert status == 201
    assert (await demo.vendor_requests()).get(SUBMITS) == 2
    assert [j["id"] for j in await demo.listing()] == [job["id"]]
    await demo.finish(job)


async def _drive(clock: FakeClock, request: asyncio.Task, step: float = 0.5):
    """Move the fake clock until the request answers (its waits are on that clock)."""
    while not request.done():
        await clock.advance(step)
        await asyncio.sleep(0.01)
    return await request


async def _finish_all(demo, clock: FakeClock) -> None:
    for job in await demo.listing():
        await demo.finish_on(clock, job)


async def test_a_reservation_left_by_a_dead_gateway_answers_in_progress_then_is_taken_over(new_demo):
    clock = FakeClock()
    server = {"idempotency_wait_s": 2.0, "idempotency_lease_s": 30.0}
    demo = await new_demo(clock=clock, server=server)
    body = submit_body()
    status, _, _ = await demo.call("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": "probe"})
    assert status == 201  # learn the body hash the gateway computes: reuse it for the dead gateway's claim
    store = demo.app[STORE]
    (body_hash, _) = await store.find_idempotent("demo", "probe")
    # a gateway reserved "k-3" for this very body, then died before the vendor answered
    claim = await store.reserve_idempotency(("demo", "k-3", body_hash), owner="dead", now=clock.now(), lease_s=30)
    assert claim.reserved
    before = (await demo.vendor_requests()).get(SUBMITS)
    pending = asyncio.create_task(demo.call("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": "k-3"}))
    status, problem, headers = await _drive(clock, pending)
    assert status == 409 and problem["code"] == "idempotency_in_progress"
    assert 1 <= int(headers["Retry-After"]) <= 28
    assert (await demo.vendor_requests()).get(SUBMITS) == before  # waited; never reached the vendor
    await clock.advance(30.0)  # the dead gateway's lease runs out
    status, job, _ = await demo.call("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": "k-3"})
    assert status == 201
    status, again, _ = await demo.call("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": "k-3"})
    assert (status, again["id"]) == (200, job["id"])
    assert (await demo.vendor_requests()).get(SUBMITS) == before + 1
    assert not await store.renew_idempotency("demo", "k-3", owner="dead", now=clock.now(), lease_s=30)
    await _finish_all(demo, clock)


async def test_a_live_request_keeps_its_reservation_past_the_lease(new_demo):
    """The holder renews while the vendor works: a duplicate arriving after one lease still waits for it."""
    clock = FakeClock()
    server = {"idempotency_wait_s": 600.0, "idempotency_lease_s": 3.0}
    demo = await new_demo(clock=clock, server=server)
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "delay", "delay_s": 1.5, "count": 1})
    headers = {"Idempotency-Key": "k-4"}
    first = asyncio.create_task(demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers))
    for _ in range(10):  # 10 s of fake time while the vendor takes 1.5 s of real time
        await clock.advance(1.0)
        await asyncio.sleep(0.05)
    second = asyncio.create_task(demo.call("POST", "/v1/jobs", json=submit_body(), headers=headers))
    (s1, j1, _), (s2, j2, _) = await _drive(clock, first), await _drive(clock, second)
    assert (s1, s2) == (201, 200) and j1["id"] == j2["id"]
    assert (await demo.vendor_requests()).get(SUBMITS) == 1
    await _finish_all(demo, clock)
