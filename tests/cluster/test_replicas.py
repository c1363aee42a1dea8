"""Two real `gateway serve --config FILE` replicas on one PostgreSQL database and one `gateway simulate`: reads,
long polls and event streams work whichever replica a client hits; readers on both replicas cost no extra vendor
requests; a SIGKILLed replica's job is finished by the other with every transition and every signed webhook; and
each job is polled by one replica only."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict
from typing import Any

import aiohttp
from cluster_kit import get_json, sim_requests, submit

from gateway.testing.cluster import AUTH, Cluster, prefix

TERMINAL = {"succeeded", "failed", "cancelled", "completed_with_issues"}


async def sse_events(http: aiohttp.ClientSession, url: str, last_event_id: int | None = None) -> list[dict[str, Any]]:
    """Every event of a job's stream until it ends (after the terminal version)."""
    headers = dict(AUTH)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events: list[dict[str, Any]] = []
    async with http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=60)) as resp:
        assert resp.status == 200
        event: dict[str, Any] = {}
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif not line and "data" in event:
                events.append(event)
                event = {}
    return events


async def wait_for_state(http: aiohttp.ClientSession, url: str, states: set[str], within: float = 30) -> dict:
    deadline = time.monotonic() + within
    while True:
        status, job = await get_json(http, url)
        assert status == 200, job
        if job["state"] in states:
            return dict(job)
        assert time.monotonic() < deadline, f"job stayed {job['state']}"
        await asyncio.sleep(0.2)


async def test_a_job_submitted_through_a_is_read_long_polled_and_streamed_through_b(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.step_s = 1.5
    await cluster.start_simulator()
    a = await cluster.start_replica("a")
    b = await cluster.start_replica("b")
    job = await submit(http, a, "segment_qa")
    on_b = f"{b.url}/v1/jobs/{job['id']}"
    status, read = await get_json(http, on_b)
    assert status == 200 and read["id"] == job["id"] and read["version"] == 1
    stream = asyncio.create_task(sse_events(http, on_b + "/events"))
    # a long poll through B returns as soon as A records version 2, long before its timeout
    started = time.monotonic()
    status, polled = await get_json(http, on_b, wait=30, version=1)
    assert status == 200 and polled["version"] == 2 and time.monotonic() - started < 10
    events = await asyncio.wait_for(stream, 60)
    versions = [e["id"] for e in events]
    final = events[-1]["data"]
    assert final["state"] in TERMINAL and versions == list(range(1, final["version"] + 1))  # no gap, no duplicate
    assert [e["data"]["version"] for e in events] == versions
    # Last-Event-ID replay through B: every version after it, in order
    replay = await sse_events(http, on_b + "/events", last_event_id=2)
    assert [e["id"] for e in replay] == list(range(3, final["version"] + 1))
    _, history = await get_json(http, on_b + "/transitions")
    assert [t["version"] for t in history["data"]] == versions


async def test_readers_on_both_replicas_cost_no_extra_vendor_requests(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.step_s = 3600.0  # the job stays queued: polled once a second for the whole window
    sim = await cluster.start_simulator()
    a = await cluster.start_replica("a")
    b = await cluster.start_replica("b")
    job = await submit(http, a, "camb")
    await asyncio.sleep(1.5)
    stats_url = sim.url + prefix("camb") + "/__sim__/stats"
    async with http.delete(stats_url):
        pass
    window = 10.0
    deadline = time.monotonic() + window

    async def reader(replica_url: str, kind: int) -> int:
        reads = 0
        url = f"{replica_url}/v1/jobs/{job['id']}"
        while (left := deadline - time.monotonic()) > 0:
            if kind == 0:
                await get_json(http, url)
                await asyncio.sleep(0.05)
            else:
                await get_json(http, url, wait=min(left, 2.0), version=1)
            reads += 1
        return reads

    reads = await asyncio.gather(*(reader(r.url, i % 2) for i in range(8) for r in (a, b)))
    async with http.get(stats_url) as resp:
        counts = (await resp.json())["requests"]
    polls = counts.get("GET /translate/{task_id}", 0)
    ticks = int(window / cluster.poll["initial_s"])
    assert sum(reads) > 200  # many readers, on both replicas
    assert 1 <= polls <= ticks + 1, counts


async def test_sigkill_of_a_mid_watch_b_finishes_the_job_with_every_transition_and_webhook(
    cluster: Cluster, http: aiohttp.ClientSession, receiver: Any
) -> None:
    cluster.step_s = 1.5
    await cluster.start_simulator()
    a = await cluster.start_replica("a")
    b = await cluster.start_replica("b")
    job = await submit(http, a, "segment_qa", webhook_url=receiver.url)
    on_b = f"{b.url}/v1/jobs/{job['id']}"
    await get_json(http, on_b, wait=20, version=1)  # A is watching: version 2 recorded
    a.kill()
    killed_at = time.time()
    final = await wait_for_state(http, on_b, TERMINAL, within=60)
    # B took the job over within the lease time (plus one lease round): its first vendor request for the job
    log = await sim_requests(http, cluster, "segment_qa")
    status_path = prefix("segment_qa") + f"/v1/jobs/{final['vendor_ref']['job_id']}"
    b_polls = [t for t, method, path, host in log if path == status_path and host.startswith("localhost")]
    assert b_polls and b_polls[0] - killed_at <= cluster.lease_s * (1 + 1 / 3) + 1.5
    _, history = await get_json(http, on_b + "/transitions")
    versions = [t["version"] for t in history["data"]]
    assert versions == list(range(1, final["version"] + 1)) and final["version"] >= 4
    # every webhook delivered, signed, in order (a retry repeats an event, never skips or reorders one)
    deadline = time.monotonic() + 30
    while {v for _, v, _, _ in receiver.deliveries} != set(versions):
        assert time.monotonic() < deadline, receiver.deliveries
        await asyncio.sleep(0.2)
    assert all(signed for _, _, signed, _ in receiver.deliveries)
    first_seen = list(dict.fromkeys(v for _, v, _, _ in receiver.deliveries))
    assert first_seen == versions
    assert all(event_id == f"evt_{job['id']}_{v}" for event_id, v, _, _ in receiver.deliveries)


async def test_200_jobs_over_2_replicas_are_each_polled_by_one_replica(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    cluster.step_s = 3600.0  # queued for good: every job polled once a second
    cluster.poll.update(rate_per_s=1000.0, concurrency=32)  # limits out of the way: this is about ownership
    cluster.lease_s = 10.0  # no lease may lapse on a loaded machine: then a job would rightly change hands
    await cluster.start_simulator()
    a = await cluster.start_replica("a")
    b = await cluster.start_replica("b")
    jobs = await asyncio.gather(*(submit(http, (a, b)[i % 2], "camb") for i in range(200)))
    started = time.time()
    await asyncio.sleep(8.0)  # two lease rounds and eight poll intervals
    log = await sim_requests(http, cluster, "camb")
    by_task: dict[str, set[str]] = defaultdict(set)
    for t, method, path, host in log:
        if method == "GET" and "/translate/" in path and t >= started:
            by_task[path.rsplit("/", 1)[1]].add(host.split(":")[0])
    task_ids = {j["vendor_ref"]["task_id"] for j in jobs}
    assert set(by_task) == task_ids  # every job polled
    shared = {task for task, hosts in by_task.items() if len(hosts) > 1}
    assert not shared, f"{len(shared)} jobs polled by both replicas"
    per_replica = defaultdict(int)
    for hosts in by_task.values():
        per_replica[next(iter(hosts))] += 1
    assert set(per_replica) == {"127.0.0.1", "localhost"} and min(per_replica.values()) >= 80, per_replica


async def test_a_vendor_rate_limit_is_the_total_over_replicas(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    cluster.step_s = 3600.0
    cluster.poll.update(rate_per_s=20.0, concurrency=8)  # 200 jobs want 200 polls/s: the limit decides
    await cluster.start_simulator()
    a = await cluster.start_replica("a")
    b = await cluster.start_replica("b")
    await asyncio.gather(*(submit(http, (a, b)[i % 2], "camb") for i in range(200)))
    await asyncio.sleep(cluster.lease_s)  # both replicas have seen each other (a lease round)
    start = time.time()
    window = 6.0
    await asyncio.sleep(window)
    log = await sim_requests(http, cluster, "camb")
    polls = [(t, host) for t, method, path, host in log if method == "GET" and start <= t < start + window]
    hosts = {host.split(":")[0] for _, host in polls}
    # both replicas poll, and together they stay within the configured 20/s (plus one bucket of burst)
    assert hosts == {"127.0.0.1", "localhost"}
    assert 20 * window * 0.6 <= len(polls) <= 20 * window + 20, len(polls)


async def test_demo_replicas_share_one_simulator_and_one_database(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await cluster.start_simulator()
    a = await cluster.start_replica("a", demo=True)
    b = await cluster.start_replica("b", demo=True)
    job = await submit(http, b, "camb")
    status, read = await get_json(http, f"{a.url}/v1/jobs/{job['id']}")
    assert status == 200 and read["id"] == job["id"]
    deadline = time.monotonic() + 10
    while True:
        async with http.get(a.url + "/readyz") as resp:
            ready = await resp.json()
        if ready["leases"]["replicas"] == 2:
            break
        assert time.monotonic() < deadline, ready
        await asyncio.sleep(0.3)
    assert ready["status"] == "ready" and ready["leases"]["ok"]


async def test_jobs_handed_to_a_new_replica_keep_their_cadence(cluster: Cluster, http: aiohttp.ClientSession) -> None:
    cluster.step_s = 3600.0  # queued for good
    every = 3.0
    cluster.lease_s = 4.5  # lease rounds every 1.5 s, out of step with the freshness notes' writes (every 1 or 2 s)
    cluster.poll.update(initial_s=every, max_s=every, factor=1.0, jitter=0.0, rate_per_s=1000.0, concurrency=32)
    await cluster.start_simulator()
    a = await cluster.start_replica("a")
    jobs = []
    for _ in range(6):  # spread over a cadence: whenever a hands jobs over, some were polled a moment before
        jobs += await asyncio.gather(*(submit(http, a, "camb") for _ in range(10)))
        await asyncio.sleep(every / 6)
    await asyncio.sleep(every)  # a polls them all on their cadence
    await cluster.start_replica("b")  # a hands half of them over (with their last checks), b claims them
    await asyncio.sleep(2 * every + 2 * cluster.lease_s)
    polls: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for t, method, path, host in await sim_requests(http, cluster, "camb"):
        if method == "GET" and "/translate/" in path:
            polls[path.rsplit("/", 1)[1]].append((t, host.split(":")[0]))
    handed = []
    for task in (j["vendor_ref"]["task_id"] for j in jobs):
        seen = sorted(polls[task])
        handed += [(t1 - t0) for (t0, h0), (t1, h1) in itertools.pairwise(seen) if h0 != h1]
    assert len(handed) >= 15, handed  # b took about half
    # the new owner polls each one a cadence after the last owner's last poll, not again at once
    assert min(handed) >= 0.85 * every, sorted(handed)[:5]
