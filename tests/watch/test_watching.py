"""Gateway-side watching: readers share one upstream poll; long poll and SSE are fed by transitions;
Retry-After is honoured; a vendor outage marks snapshots stale and recovers."""

from __future__ import annotations

import asyncio
import itertools
import json

from gateway.plugins import get_providers
from support.cases import load_case
from support.waiting import wait_until
from support.watching import FakeWatch

CAMB = get_providers()["camb"].sim_prefix


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


async def _job(demo, job):
    _, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
    return body


async def test_transitions_arrive_by_long_poll_and_sse_in_order_without_gaps(new_demo):
    demo = await new_demo()
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


async def test_sse_resumes_after_last_event_id_and_ends_after_terminal(new_demo):
    demo = await new_demo()
    job = await demo.submit("camb", load_case("camb").valid_input)
    await _force(demo, job, {"status": "SUCCESS", "run_id": 3})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    all_events = await _sse_events(demo, job["id"])
    assert [int(e["id"]) for e in all_events] == [done["version"]]  # the snapshot, then the stream ends
    assert await _sse_events(demo, job["id"], last_event_id=done["version"]) == []
    replayed = await _sse_events(demo, job["id"], last_event_id=1)  # reconnecting after version 1
    assert [int(e["id"]) for e in replayed] == list(range(2, done["version"] + 1))
    assert [json.loads(e["data"])["version"] for e in replayed] == list(range(2, done["version"] + 1))


#: poll settings for the fake-clock tests: every interval a multiple of the fake clock's step
STEADY = {"initial_s": 0.5, "factor": 2.0, "max_s": 1.0, "jitter": 0.0, "breaker_failures": 100}


async def _running(fake: FakeWatch, demo, **submit_extra):
    """A camb job the vendor keeps PENDING (pinned), after the watcher's first poll saw it running."""
    job = await demo.submit("camb", load_case("camb").valid_input, **submit_extra)
    await _force(demo, job, {"status": "PENDING"})
    await fake.advance_until(lambda: bool(fake.log.status_reads(job["vendor_ref"]["task_id"])))
    snapshot = await _job(demo, job)
    assert (snapshot["vendor_status"], snapshot["stale"]) == ("PENDING", False)
    return job


async def test_many_readers_share_one_upstream_poll(fake):
    """200 long-pollers and 50 SSE streams on one job while 10 fake seconds pass: the vendor sees exactly the
    watcher's schedule (one request per interval at the cap), not one request more for all those readers."""
    demo = await fake.make(poll={**STEADY, "max_s": 2.0})
    job = await _running(fake, demo)
    task = job["vendor_ref"]["task_id"]
    await fake.advance(4.0)  # the backoff reaches its 2 s cap
    served = 0

    async def long_poller():
        nonlocal served
        version = job["version"]
        while True:
            status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}?wait=0.5&version={version}")
            assert status == 200
            version = body["version"]
            served += 1

    async def sse_reader():
        nonlocal served
        headers = {"Authorization": "Bearer demo-key"}
        async with demo.client.get(f"/v1/jobs/{job['id']}/events", headers=headers) as resp:
            assert resp.status == 200
            async for _ in resp.content:
                served += 1

    readers = [asyncio.create_task(long_poller()) for _ in range(200)]
    readers += [asyncio.create_task(sse_reader()) for _ in range(50)]
    try:
        before = len(fake.log.status_reads(task))
        start = fake.clock()
        await fake.advance(10.0)
        window = [r.at - start for r in fake.log.status_reads(task)[before:]]

        async def everyone_served() -> bool:
            if served >= 250:
                return True
            await fake.advance(0.25)  # a long poll answers when its wait is over on the gateway's (fake) clock
            return False

        await wait_until(everyone_served, what="every reader served at least once")
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    assert len(window) == 5 and all(b - a == 2.0 for a, b in itertools.pairwise(window)), window


async def test_retry_after_is_honoured(fake):
    """After a 429 with Retry-After 2 the next vendor request comes 2 s later on the fake clock, not before
    (the backoff alone would have asked again after 1 s)."""
    demo = await fake.make(poll=STEADY)
    job = await _running(fake, demo)
    task = job["vendor_ref"]["task_id"]
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_429", "count": 1, "retry_after_s": 2})
    reads = len(fake.log.status_reads(task))
    await fake.advance_until(lambda: len(fake.log.status_reads(task)) > reads)
    limited = fake.log.status_reads(task)[-1]
    assert limited.status == 429
    snapshot = await _job(demo, job)
    assert snapshot["stale"] is True and snapshot["poll_after_s"] == 2.05
    await fake.advance(1.75)
    assert fake.log.status_reads(task)[-1] == limited  # nothing while the vendor asked us to wait
    assert (await _job(demo, job))["poll_after_s"] == 0.3
    await fake.advance(0.25)
    after = fake.log.status_reads(task)[-1]
    assert (after.status, after.at - limited.at) == (200, 2.0)
    fresh = await _job(demo, job)
    assert (fresh["stale"], fresh["state"]) == (False, "running")


async def test_vendor_outage_opens_the_breaker_marks_stale_and_recovers(fake):
    """Three 503s open the breaker: no vendor request for breaker_reset_s (5 fake seconds), then one trial; a
    failed trial re-opens it for another 5 s; the job is stale meanwhile and fresh again once the vendor answers."""
    demo = await fake.make(poll={**STEADY, "breaker_failures": 3, "breaker_reset_s": 5.0})
    job = await _running(fake, demo)
    task = job["vendor_ref"]["task_id"]
    healthy = await _job(demo, job)
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_503", "count": 4})
    reads = len(fake.log.status_reads(task))
    await fake.advance_until(lambda: len(fake.log.status_reads(task)) == reads + 3)
    stale = await _job(demo, job)
    assert stale["stale"] is True and stale["state"] == "running" and stale["error"] is None  # not the job's error
    assert stale["version"] == healthy["version"]
    await fake.advance(10.0)
    outage = fake.log.status_reads(task)[reads:]
    assert [r.status for r in outage] == [503, 503, 503, 503, 200]
    opened = outage[2].at
    assert [r.at - opened for r in outage[3:]] == [5.0, 10.0]  # one trial per reset period, none in between
    recovered = await _job(demo, job)
    assert recovered["stale"] is False and recovered["checked_at"] > stale["checked_at"]
    await _force(demo, job, {"status": "SUCCESS", "run_id": 11})
    await fake.advance(1.0)
    done = await _job(demo, job)
    assert (done["state"], done["stale"]) == ("succeeded", False)
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    assert 'outcome="VendorServerError",provider="camb"' in text.decode()


async def test_shutdown_ends_sse_streams_and_long_polls_at_once(new_demo, caplog):
    import logging

    caplog.set_level(logging.ERROR)
    demo = await new_demo()
    job = await demo.submit("camb", load_case("camb").valid_input)
    streaming = asyncio.Event()

    async def sse():
        async with demo.client.get(f"/v1/jobs/{job['id']}/events", headers=demo.headers()) as resp:
            async for _ in resp.content:
                streaming.set()  # the snapshot arrived: the stream now waits for the next version

    stream = asyncio.create_task(sse())
    poll = asyncio.create_task(demo.call("GET", f"/v1/jobs/{job['id']}?wait=60&version={job['version'] + 50}"))
    await asyncio.wait_for(streaming.wait(), 10)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await demo.client.server.close()
    await asyncio.wait({stream, poll}, timeout=12)
    assert loop.time() - started < 8  # at once, not after the SSE (15 s) or long-poll (60 s) timeouts
    assert stream.done() and poll.done()
    assert not [r for r in caplog.records if "unhandled error" in r.getMessage()]
