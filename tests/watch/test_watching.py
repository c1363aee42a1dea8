"""Gateway-side watching: readers share one upstream poll; long poll and SSE are fed by transitions;
Retry-After is honoured; a vendor outage marks snapshots stale and recovers."""

from __future__ import annotations

import asyncio
import json
import time

from gateway.plugins import get_providers
from support.cases import load_case

CAMB = get_providers()["camb"].sim_prefix
STATUS_ROUTE = "GET /translate/{task_id}"


async def _sse_events(demo, job_id, *, last_event_id=None, key="demo-key"):
    headers = {"Authorization": f"Bearer {key}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events = []
    async with demo.client.get(f"/v1/jobs/{job_id}/events", headers=headers) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
        block = {}
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if not line:
                if "data" in block:
                    events.append(block)
                block = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                block[field] = value
    return events


async def _force(demo, job, patch):
    await demo.sim(CAMB, f"/__sim__/jobs/{job['vendor_ref']['task_id']}/state", patch)


async def _poll_until(read, predicate, *, within=10.0, every=0.02):
    """Read repeatedly (plain reads, no long poll) until predicate(value) holds; the value."""
    for _ in range(int(within / every)):
        value = await read()
        if predicate(value):
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"condition not met within {within}s; last value {value!r}")


async def _job(demo, job):
    _, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
    return body


async def _status_requests(demo):
    stats = await demo.sim(CAMB, "/__sim__/stats")
    return stats["requests"].get(STATUS_ROUTE, 0)


async def test_transitions_arrive_by_long_poll_and_sse_in_order_without_gaps(make):
    demo = await make()
    job = await demo.submit("camb", load_case("camb").valid_input)
    sse = asyncio.create_task(_sse_events(demo, job["id"]))
    polled = [job["version"]]

    async def long_poll():
        current = job
        while not current["terminal"]:
            _, current, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?wait=5&version={current['version']}")
            polled.append(current["version"])

    poller = asyncio.create_task(long_poll())
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    await _force(demo, job, {"status": "REBALANCING"})
    await demo.wait_for(job["id"], lambda j: j["state"] == "unknown")
    await _force(demo, job, {"status": "PENDING"})
    await demo.wait_for(job["id"], lambda j: j["state"] == "running")
    await _force(demo, job, {"status": "SUCCESS", "run_id": 7})
    await asyncio.wait_for(poller, 10)
    events = await asyncio.wait_for(sse, 10)

    _, history, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/transitions")
    versions = [t["version"] for t in history["data"]]
    assert versions == list(range(1, len(versions) + 1))
    assert [t["state"] for t in history["data"]] == ["queued", "running", "unknown", "running", "succeeded"]
    sse_versions = [int(e["id"]) for e in events]
    assert sse_versions == versions[sse_versions[0] - 1 :]  # from the snapshot on, every version, in order
    assert all(e["event"] == "job" for e in events)
    assert json.loads(events[-1]["data"])["state"] == "succeeded"
    assert sorted(set(polled)) == [v for v in versions if v >= polled[0]]


async def test_sse_resumes_after_last_event_id_and_ends_after_terminal(make):
    demo = await make()
    job = await demo.submit("camb", load_case("camb").valid_input)
    await _force(demo, job, {"status": "SUCCESS", "run_id": 3})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    all_events = await _sse_events(demo, job["id"])
    assert [int(e["id"]) for e in all_events] == [done["version"]]  # the snapshot, then the stream ends
    assert await _sse_events(demo, job["id"], last_event_id=done["version"]) == []
    replayed = await _sse_events(demo, job["id"], last_event_id=1)  # reconnecting after version 1
    assert [int(e["id"]) for e in replayed] == list(range(2, done["version"] + 1))
    assert [json.loads(e["data"])["version"] for e in replayed] == list(range(2, done["version"] + 1))


async def test_many_readers_share_one_upstream_poll(make):
    """200 long-pollers and 50 SSE streams on one job for 10 s: vendor status requests <= poll ticks + 1."""
    poll = {"initial_s": 0.5, "factor": 2.0, "max_s": 2.0, "jitter": 0.0}
    demo = await make(poll=poll)
    job = await demo.submit("camb", load_case("camb").valid_input)
    await _force(demo, job, {"status": "PENDING"})  # pinned: the job stays running, unchanged
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    before = await _status_requests(demo)
    duration = 10.0
    stop_at = time.monotonic() + duration
    served = 0

    async def long_poller():
        nonlocal served
        version = job["version"]
        while time.monotonic() < stop_at:
            wait = max(0.1, min(2.0, stop_at - time.monotonic()))
            status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?wait={wait:.2f}&version={version}")
            assert status == 200
            version = body["version"]
            served += 1

    async def sse_reader():
        nonlocal served
        headers = {"Authorization": "Bearer demo-key"}
        async with demo.client.get(f"/v1/jobs/{job['id']}/events", headers=headers) as resp:
            assert resp.status == 200
            try:
                async with asyncio.timeout(max(0.1, stop_at - time.monotonic())):
                    async for _ in resp.content:
                        served += 1
            except TimeoutError:
                pass

    await asyncio.gather(*[long_poller() for _ in range(200)], *[sse_reader() for _ in range(50)])
    upstream = await _status_requests(demo) - before
    # the poll schedule over the window: 0.5, 1, 2, 2, 2, ... seconds apart
    ticks, elapsed, interval = 0, 0.0, 2.0  # the job is already at the cap after its first polls
    while elapsed + interval <= duration:
        elapsed += interval
        ticks += 1
    assert served >= 250
    assert upstream <= ticks + 1 + 2, (upstream, ticks)  # +2: the schedule may still be ramping when we start
    assert upstream >= 1


async def test_retry_after_is_honoured(make):
    demo = await make(poll={"initial_s": 0.05, "max_s": 0.1, "breaker_failures": 100})
    job = await demo.submit("camb", load_case("camb").valid_input)
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_429", "count": 1, "retry_after_s": 2})
    start = await _status_requests(demo)
    after_429 = await _poll_until(lambda: _status_requests(demo), lambda n: n > start, every=0.01)  # the 429
    hit = time.monotonic()
    _, snapshot, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
    assert snapshot["stale"] is True and snapshot["poll_after_s"] >= 1.5
    await asyncio.sleep(1.5)
    assert await _status_requests(demo) == after_429  # nothing while the vendor asked us to wait
    await _poll_until(lambda: _status_requests(demo), lambda n: n > after_429)
    assert time.monotonic() - hit >= 1.9
    fresh = await demo.wait_for(job["id"], lambda j: not j["stale"])
    assert fresh["state"] == "running"


async def test_vendor_outage_marks_stale_and_recovers(make):
    demo = await make(poll={"initial_s": 0.05, "max_s": 0.1, "breaker_failures": 3, "breaker_reset_s": 0.5})
    job = await demo.submit("camb", load_case("camb").valid_input)
    healthy = await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    assert healthy["stale"] is False and healthy["checked_at"]
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_503", "count": 8})
    stale = await _poll_until(lambda: _job(demo, job), lambda j: j["stale"])
    assert stale["state"] == "running" and stale["error"] is None  # the job's error is not the vendor's outage
    assert stale["version"] == healthy["version"]
    await _force(demo, job, {"status": "SUCCESS", "run_id": 11})
    recovered = await demo.wait_for(job["id"], lambda j: j["terminal"], within=15)
    assert recovered["stale"] is False and recovered["state"] == "succeeded"
    assert recovered["checked_at"] > stale["checked_at"]
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    assert 'outcome="VendorServerError",provider="camb"' in text.decode()


async def test_shutdown_ends_sse_streams_and_long_polls_at_once(make, caplog):
    import logging

    caplog.set_level(logging.ERROR)
    demo = await make()
    job = await demo.submit("camb", load_case("camb").valid_input)
    sse = asyncio.create_task(_sse_events(demo, job["id"]))
    poll = asyncio.create_task(demo.call("GET", f"/v1/jobs/{job['id']}?wait=60&version={job['version'] + 50}"))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await demo.client.server.close()
    await asyncio.wait({sse, poll}, timeout=12)
    assert time.monotonic() - started < 8  # at once, not after the SSE (15 s) or long-poll (60 s) timeouts
    assert sse.done() and poll.done()
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
