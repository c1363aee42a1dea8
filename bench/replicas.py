"""`make bench` (replicas): what coordination costs. 10,000 watched jobs on ONE replica on PostgreSQL, then the same
on TWO replicas sharing one PostgreSQL, every figure of the second run printed as a ratio against the first one,
measured in this same invocation on this machine. Loopback only; bounded in count and time.

Everything is a real process: a private PostgreSQL server (gateway.testing.postgres), `gateway simulate --step
3600` (no job ever finishes: every poll is the steady-state "nothing new"), and `gateway serve --config FILE`
replicas (gateway.testing.cluster). The jobs are seeded straight into each run's database (vendor jobs created in
the simulator first), their last check spread over one cadence, and left to the replicas' lease keepers to claim.

Per run, over a window of W seconds once every job is claimed and polled at least once (no reads):
- CPU per vendor poll: the replicas' user+system CPU seconds (from /proc, summed over replicas) per status
  request the simulator received;
- database round trips per vendor poll: statements the replicas sent (their `/readyz` counter) per status request;
- cadence: status requests received / (jobs x W / 10 s), and the share of jobs whose every gap between two polls
  stayed within 1.2 cadences;
- vendor request lag: each poll's gap to the previous poll of the same job, minus the 10 s cadence (jitter 0), p50
  and p99 (from the simulator's request log);
- then, in a second window of W seconds: status read latency, GET /v1/jobs/{id} of random jobs, ~100 reads/s
  spread over the replicas, p50/p99 each (with two replicas, half the reads are of jobs the other one watches:
  read from the database rather than from memory).

On 2 cores the two replicas share the same CPUs: the run measures the cost of coordination, not a speed-up.

    .venv/bin/python bench/replicas.py [--jobs 10000] [--window 30] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from _common import cpu_seconds_of

from gateway.states import CanonicalStatus, State
from gateway.store import JobRecord, open_store
from gateway.store.pg import PostgresStore
from gateway.testing.cluster import AUTH, Cluster, Process, prefix
from gateway.testing.postgres import PostgresServer

CADENCE_S = 10.0
#: every job on a 10 s cadence, limits wide enough not to be what is measured
POLL = {"initial_s": CADENCE_S, "factor": 1.0, "max_s": CADENCE_S, "jitter": 0.0, "rate_per_s": 5000.0}
POLL["concurrency"] = 64
PROVIDER = "camb"
STATUS_TEMPLATE = "GET /translate/{task_id}"
READS_PER_S = 100.0
#: seconds between the seeding's end and the replicas claiming the jobs (process start, first lease round): the
#: last checks are spread over the cadence that ends this long after the seeding, so no job is overdue when claimed
CLAIM_LEAD_S = 3.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def vendor_jobs(http: aiohttp.ClientSession, sim_url: str, n: int) -> list[str]:
    """n jobs created in the camb simulator (its own API); their task ids."""
    body = {"source_language": 1, "target_language": 31, "texts": ["hello benchmark"]}
    url = sim_url + prefix(PROVIDER) + "/translate"
    headers = {"x-api-key": os.environ.get("GATEWAY_DEMO_VENDOR_KEY", "demo-vendor-key")}
    ids: list[str] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            async with http.post(url, json=body, headers=headers) as resp:
                assert resp.status == 200, await resp.text()
                ids.append((await resp.json())["task_id"])

    per = [n // 32 + (1 if i < n % 32 else 0) for i in range(32)]
    await asyncio.gather(*(worker(c) for c in per))
    return ids


async def seed(db_url: str, tasks: list[str], state_dir: Path) -> list[str]:
    """One running job per vendor task (as its vendor reports it: every poll finds nothing new), owned by nobody,
    last checked at a time spread over the cadence that ends when the replicas, started next, claim them."""
    store = open_store(f"{db_url}?replica=seed&pool_max=16", state_dir=state_dir)
    assert isinstance(store, PostgresStore)
    now = datetime.now(UTC)
    ids = [f"job_{i:024x}" for i in range(len(tasks))]  # the API accepts job ids of this shape only
    async with store:

        async def one(job_id: str, task: str) -> None:
            checked = now - timedelta(seconds=random.uniform(0, CADENCE_S))
            record = JobRecord(
                id=job_id,
                tenant="demo",
                provider=PROVIDER,
                vendor_ref={"task_id": task},
                status=CanonicalStatus(state=State.RUNNING, vendor_status="PENDING"),  # what CAMB says: no change
                created_at=checked,
                updated_at=checked,
                checked_at=checked,
            )
            await store.create_job(record)

        pairs = list(zip(ids, tasks, strict=True))
        for start in range(0, len(pairs), 500):
            await asyncio.gather(*(one(j, t) for j, t in pairs[start : start + 500]))
        await store.release_jobs(list(store.held()))
        # Seeding takes seconds: last checks spread from its start would leave many jobs overdue at the claim, and
        # a claimed overdue job is polled within a second (a takeover's catch-up): the polls would stay bunched,
        # the cadence having no jitter here. Spread as of the claim, they are polled as in a long-running cluster.
        await store.db.execute(
            "UPDATE jobs SET checked_us = gw_now_us() + $1 - (random() * $2)::bigint",
            int(CLAIM_LEAD_S * 1e6),
            int(CADENCE_S * 1e6),
        )
    return ids


async def readyz(http: aiohttp.ClientSession, replica: Process) -> dict[str, Any]:
    async with http.get(replica.url + "/readyz") as resp:
        return dict(await resp.json())


async def settle(http: aiohttp.ClientSession, replicas: list[Process], jobs: int, limit_s: float) -> float:
    """Wait until the replicas hold every job between them, evenly; seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        states = [await readyz(http, r) for r in replicas]
        held = [s["leases"]["held"] if "leases" in s else 0 for s in states]  # busy claiming: 503 for a moment
        if sum(held) == jobs and max(held) - min(held) <= jobs * 0.1 + 16:
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise SystemExit(f"the replicas did not settle on {jobs} jobs within {limit_s:g} s")


async def read_load(
    http: aiohttp.ClientSession, replicas: list[Process], job_ids: list[str], until: float
) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = defaultdict(list)
    failures = defaultdict(int)
    interval = 1.0 / READS_PER_S
    next_at = time.monotonic()
    pending: set[asyncio.Task[None]] = set()

    async def one(replica: Process) -> None:
        started = time.perf_counter()
        async with http.get(f"{replica.url}/v1/jobs/{random.choice(job_ids)}", headers=AUTH) as resp:
            await resp.read()
        if resp.status == 200:
            latencies[replica.url].append((time.perf_counter() - started) * 1000)
        else:
            failures[replica.url] += 1

    i = 0
    while time.monotonic() < until:
        task = asyncio.create_task(one(replicas[i % len(replicas)]))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*pending)
    for url, count in failures.items():
        print(f"  !! {count} status reads from {url} did not answer 200", flush=True)
    return latencies


async def measure(cluster: Cluster, replicas: list[Process], job_ids: list[str], window: float) -> dict[str, Any]:
    """Two windows of `window` seconds: the watching alone (CPU, round trips, cadence, lag: reads would add their
    own CPU and, for jobs another replica watches, their own database reads), then status reads under watching."""
    assert cluster.sim is not None
    async with aiohttp.ClientSession() as http:
        stats_url = cluster.sim.url + prefix(PROVIDER) + "/__sim__/stats"
        trips0 = [(await readyz(http, r))["leases"]["round_trips"] for r in replicas]
        cpu0 = [cpu_seconds_of(r.pid) for r in replicas]
        async with http.get(stats_url) as resp:
            polls0 = (await resp.json())["requests"].get(STATUS_TEMPLATE, 0)
        wall0, t0 = time.monotonic(), time.time()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - wall0
        cpu = sum(cpu_seconds_of(r.pid) for r in replicas) - sum(cpu0)
        async with http.get(stats_url) as resp:
            polls = (await resp.json())["requests"].get(STATUS_TEMPLATE, 0) - polls0
        # each closing /readyz pings the store before it reports the count: that ping is the measurement's own
        trips = sum([(await readyz(http, r))["leases"]["round_trips"] for r in replicas]) - sum(trips0) - len(replicas)
        async with http.get(cluster.sim.url + prefix(PROVIDER) + "/__sim__/requests") as resp:
            log = (await resp.json())["requests"]
        latencies = await read_load(http, replicas, job_ids, time.monotonic() + window)
    times: dict[str, list[float]] = defaultdict(list)
    for t, method, path, _host in log:
        if method == "GET" and t0 - 2 * CADENCE_S <= t < t0 + elapsed:
            times[path].append(t)
    lags: list[float] = []
    on_cadence = 0
    for stamps in times.values():
        gaps = [b - a for a, b in itertools.pairwise(stamps) if b >= t0]
        lags.extend(g - CADENCE_S for g in gaps)
        on_cadence += bool(gaps) and max(gaps) <= 1.2 * CADENCE_S
    reads = {r.url: latencies.get(r.url, []) for r in replicas}
    return {
        "replicas": len(replicas),
        "window_s": elapsed,
        "polls": polls,
        "cpu_s": cpu,
        "round_trips": trips,
        "cpu_ms_per_poll": 1000 * cpu / max(polls, 1),
        "trips_per_poll": trips / max(polls, 1),
        "cadence": polls / (len(job_ids) * elapsed / CADENCE_S),
        "jobs_on_cadence": on_cadence / len(job_ids),
        "lag_p50_s": pct(lags, 0.5),
        "lag_p99_s": pct(lags, 0.99),
        "reads": {url: (pct(v, 0.5), pct(v, 0.99), len(v)) for url, v in reads.items()},
    }


async def run_once(
    server: PostgresServer, tmp: Path, sim: Process, tasks: list[str], count: int, window: float
) -> dict[str, Any]:
    db_url = server.create_database(f"bench_{count}")
    job_ids = await seed(db_url, tasks, tmp / f"seed{count}")
    cluster = Cluster(tmp / f"run{count}", db_url, lease_s=15.0, poll=dict(POLL), store_options={"pool_max": "20"})
    await asyncio.to_thread(cluster.tmp.mkdir)
    cluster.sim = sim
    try:
        replicas = [await cluster.start_replica(name) for name in "ab"[:count]]
        async with aiohttp.ClientSession() as http:
            took = await settle(http, replicas, len(job_ids), limit_s=120)
        print(f"  {count} replica(s): every job claimed after {took:.1f} s; warming up one cadence", flush=True)
        await asyncio.sleep(CADENCE_S + 2)
        figures = await measure(cluster, replicas, job_ids, window)
    finally:
        for replica in cluster.replicas:
            replica.stop()
    return figures


def report(one: dict[str, Any], two: dict[str, Any], jobs: int) -> None:
    load = os.getloadavg()[0]
    print(f"\n  (load average {load:.1f} on {os.cpu_count()} cores: other processes share these CPUs)")
    print(f"\n== replicas: {jobs:,} watched jobs, 10 s cadence; two replicas on one PostgreSQL vs one ({'=' * 20}")
    print(f"  {'figure':<46} {'1 replica':>12} {'2 replicas':>12} {'ratio':>8}  target")

    def line(label: str, key: str, fmt: str, target: str = "") -> None:
        a, b = one[key], two[key]
        ratio = b / a if a else float("nan")
        print(f"  {label:<46} {a:>12{fmt}} {b:>12{fmt}} {ratio:>7.2f}x  {target}")

    line("vendor status requests in the window", "polls", ",.0f")
    line("CPU ms per vendor poll (summed over replicas)", "cpu_ms_per_poll", ".3f", "<= 1.25x")
    line("database round trips per vendor poll", "trips_per_poll", ".4f", "<= 1.5x")
    line("database round trips in the window (all)", "round_trips", ",.0f")
    line("cadence reached (polls / asked)", "cadence", ".3f")
    line("jobs on cadence (every gap <= 12 s)", "jobs_on_cadence", ".3f")
    line("vendor request lag p50 (s)", "lag_p50_s", ".3f")
    line("vendor request lag p99 (s)", "lag_p99_s", ".3f")
    base_p50, base_p99, _ = next(iter(one["reads"].values()))
    print(f"  status reads, 1 replica: p50 {base_p50:.2f} ms, p99 {base_p99:.2f} ms")
    for i, (p50, p99, n) in enumerate(two["reads"].values()):
        print(
            f"  status reads, replica {'ab'[i]} of 2: p50 {p50:.2f} ms ({p50 / base_p50:.2f}x), "
            f"p99 {p99:.2f} ms ({p99 / base_p99:.2f}x), {n} reads"
        )


async def main(args: argparse.Namespace) -> None:
    jobs = 2000 if args.quick else args.jobs
    window = 15.0 if args.quick else args.window
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as raw:
        tmp = Path(args.keep or raw)
        await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
        server = PostgresServer.start_in()
        sim_cluster = Cluster(tmp, server.url(), step_s=3600.0)
        try:
            sim = await sim_cluster.start_simulator()
            async with aiohttp.ClientSession() as http:
                tasks = await vendor_jobs(http, sim.url, jobs)
            print(f"  {jobs:,} vendor jobs created in the simulator", flush=True)
            one = await run_once(server, tmp, sim, tasks, 1, window)
            two = await run_once(server, tmp, sim, tasks, 2, window)
        finally:
            sim_cluster.stop()
            server.destroy()
    report(one, two, jobs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of each measuring window")
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, 15 s windows")
    parser.add_argument("--keep", help="keep the replicas' logs and state in this directory")
    asyncio.run(main(parser.parse_args()))
