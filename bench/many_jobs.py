"""Many watched jobs: one gateway process watching N (default 10,000) non-terminal jobs on a 10 s cadence,
against the same process idle, while a client reads job statuses at 100 requests/s.

The vendor simulators run in a child process (`python -m gateway simulate --step 3600`, so no job ever
finishes), which keeps their CPU out of the measured process; this process is the real gateway app
(create_app, SQLite store in a temp dir, the real Watcher). The reads come from wrk in its own process, paced to
100 requests/s (exponential gaps) over the whole window, each `GET /v1/jobs/{id}` of a random watched job.
Loopback only.

Phases, all in one run:
1. baseline: the app with 0 watched jobs (one finished job stored, read at 100/s) for W seconds: CPU seconds per
   wall second, read latency, RSS;
2. N vendor jobs are created in the simulator over its HTTP API (bounded concurrency), each stored through the
   store already `running` / `PENDING` (what the vendor answers, so every poll is an unchanged one, as in the
   steady state), then all handed to `watcher.watch(job, delay=uniform(0, 10 s))`;
3. after a settling period, W seconds of steady state: CPU per vendor poll above the baseline, vendor polls per
   second (the simulator's own counter) against the N/10 the cadence asks, how late each vendor request left
   against its due time, the read latency percentiles, RSS per job.

Poll settings: initial_s = max_s = 10 s (the default cap, so there is no warm-up), jitter 0.1 (default), and a
lane wide enough for N/10 polls a second (`--lane-rate`, `--lane-concurrency`).

The request lag is read off the live instances: the bench wraps the provider's `fetch_status` and looks up the
job's due time in the watcher.

    .venv/bin/python bench/many_jobs.py [--jobs 10000] [--duration 15] [--quick] [--json out.json]
"""

from __future__ import annotations

import asyncio
import gc
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    CAMB_BODY,
    CAMB_PREFIX,
    CAMB_STATUS,
    VENDOR_KEY,
    auth,
    bench_main,
    bench_parser,
    cpu_seconds_of,
    gateway_app,
    heading,
    ms,
    parse_bench_args,
    percentiles,
    require_wrk,
    reset_sim_stats,
    row,
    rss_kib,
    run_wrk,
    sim_stats,
    simulators_subprocess,
)

from gateway.jobs import new_job_id
from gateway.server.keys import GATEWAY, STORE
from gateway.states import CanonicalStatus, State
from gateway.store.records import JobRecord
from gateway.watch.engine import Watcher

CAP_S = 10.0
READ_RATE = 100.0


class LagProbe:
    """How late each vendor status request leaves against its job's due time, read off the live instances."""

    def __init__(self, watcher: Watcher, provider_name: str) -> None:
        self.watcher = watcher
        self.job_of_task: dict[str, str] = {}
        self.request_lag: list[float] = []
        self.recording = False
        provider = watcher.providers[provider_name]
        fetch_status = provider.fetch_status

        async def _fetch_status(conn: Any, ref: dict[str, Any]) -> Any:
            if self.recording:
                job_id = self.job_of_task.get(ref.get("task_id", ""))
                due = watcher.due_at(job_id) if job_id else None
                if due is not None:
                    self.request_lag.append(watcher.clock() - due)
            return await fetch_status(conn, ref)

        provider.fetch_status = _fetch_status  # type: ignore[method-assign]


def thread_cpu() -> dict[str, float]:
    """CPU seconds per live Python thread of this process, by thread name."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[thread.name] = out.get(thread.name, 0.0) + (int(fields[11]) + int(fields[12])) / 100
    return out


async def measure_window(
    seconds: float, sim_pid: int, session: aiohttp.ClientSession, sim_url: str, read_url: str, paths: Path
) -> dict[str, Any]:
    """CPU of this process (all threads, and per thread) and of the simulator over `seconds` of wall time, the
    vendor status requests the simulator counted, and the latency of reads paced at 100/s by wrk meanwhile."""
    await reset_sim_stats(session, sim_url)
    threads0, sim0 = thread_cpu(), cpu_seconds_of(sim_pid)
    cpu0, wall0 = time.process_time(), time.monotonic()
    reads = asyncio.create_task(
        asyncio.to_thread(
            run_wrk, read_url, duration_s=seconds, connections=4, rate=READ_RATE, paths_file=paths, headers=auth()
        )
    )
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.monotonic()
    threads1, sim1 = thread_cpu(), cpu_seconds_of(sim_pid)
    polls = (await sim_stats(session, sim_url)).get(CAMB_STATUS, 0)
    wrk = await reads
    wall = wall1 - wall0
    per_thread = {name: (threads1[name] - threads0.get(name, 0.0)) / wall for name in threads1}
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "cpu_per_s": (cpu1 - cpu0) / wall,
        "sim_cpu_per_s": (sim1 - sim0) / wall,
        "polls": polls,
        "polls_per_s": polls / wall,
        "threads_cpu_per_s": {k: v for k, v in sorted(per_thread.items(), key=lambda kv: -kv[1]) if v > 0.001},
        "reads": wrk,
    }


async def create_jobs(app: Any, sim_url: str, n: int, concurrency: int, probe: LagProbe) -> list[JobRecord]:
    """N vendor jobs created in the simulator over its HTTP API and stored as JobRecords (not watched yet)."""
    store = app[STORE]
    # stored as the vendor will answer (running, PENDING): every poll is an unchanged one, the steady state
    running = app[GATEWAY].providers["camb"].normalize({"status": "PENDING", "run_id": None})
    assert running.state is State.RUNNING
    counter = iter(range(n))
    created: list[JobRecord] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for _ in counter:
                async with session.post(
                    sim_url + CAMB_PREFIX + "/translate", json=CAMB_BODY, headers={"x-api-key": VENDOR_KEY}
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                job, fresh = await store.create_job(_record(body["task_id"], running))
                assert fresh
                probe.job_of_task[body["task_id"]] = job.id
                created.append(job)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created


def _record(task_id: str, status: CanonicalStatus) -> JobRecord:
    stamp = datetime.now(UTC)
    return JobRecord(
        id=new_job_id(),
        tenant="demo",
        provider="camb",
        vendor_ref={"task_id": task_id},
        status=status,
        created_at=stamp,
        updated_at=stamp,
    )


async def run(
    jobs: int, window: float, settle: float, create_concurrency: int, lane_rate: float, lane_concurrency: int
) -> dict[str, Any]:
    require_wrk()
    poll = {
        "initial_s": CAP_S,
        "factor": 2.0,
        "max_s": CAP_S,
        "jitter": 0.1,
        "concurrency": lane_concurrency,
        "rate_per_s": lane_rate,
    }
    r: dict[str, Any] = {"jobs": jobs, "window_s": window, "poll": poll, "create_concurrency": create_concurrency}
    with tempfile.TemporaryDirectory(prefix="bench-many-jobs-") as tmp:
        async with (
            simulators_subprocess(step_s=3600.0) as (sim_url, sim_pid),
            gateway_app(sim_url, Path(tmp) / "state", poll) as gw,
            aiohttp.ClientSession() as control,
        ):
            watcher = gw.app[GATEWAY].watcher
            probe = LagProbe(watcher, "camb")
            # the baseline's read target: one finished job, stored, not watched
            done = gw.app[GATEWAY].providers["camb"].normalize({"status": "ERROR"})
            finished, _ = await gw.app[STORE].create_job(_record("finished-task", done))
            idle_paths = Path(tmp) / "idle-paths.txt"
            idle_paths.write_text(f"/v1/jobs/{finished.id}\n")
            await asyncio.sleep(1.0)  # let start-up settle
            gc.collect()
            r["rss_idle_kib"] = rss_kib()
            r["idle"] = await measure_window(window, sim_pid, control, sim_url, gw.url, idle_paths)

            started = time.monotonic()
            created = await create_jobs(gw.app, sim_url, jobs, create_concurrency, probe)
            r["create_s"] = time.monotonic() - started
            paths = Path(tmp) / "paths.txt"
            paths.write_text("".join(f"/v1/jobs/{job.id}\n" for job in created))
            gc.collect()
            r["rss_stored_kib"] = rss_kib()
            for job in created:  # first polls spread over the cadence
                watcher.watch(job, delay=random.uniform(0.0, CAP_S))
            del created
            r["watching"] = watcher.watching()
            await asyncio.sleep(settle)
            probe.recording = True
            r["loaded"] = await measure_window(window, sim_pid, control, sim_url, gw.url, paths)
            probe.recording = False
            r["request_lag"] = percentiles(probe.request_lag)
            gc.collect()
            r["rss_loaded_kib"] = rss_kib()
    idle, loaded = r["idle"], r["loaded"]
    r["expected_polls_per_s"] = jobs / CAP_S
    r["rss_per_job_kib"] = (r["rss_loaded_kib"] - r["rss_idle_kib"]) / jobs
    r["rss_watch_per_job_kib"] = (r["rss_loaded_kib"] - r["rss_stored_kib"]) / jobs
    r["cpu_ratio_loaded_over_idle"] = loaded["cpu_per_s"] / max(idle["cpu_per_s"], 1e-6)
    extra_cpu = loaded["cpu_s"] - idle["cpu_per_s"] * loaded["wall_s"]
    r["cpu_ms_per_poll"] = 1000 * extra_cpu / max(1, loaded["polls"])
    r["cadence_reached"] = loaded["polls_per_s"] / r["expected_polls_per_s"]
    r["read_p99_ratio"] = loaded["reads"]["latency"]["p99"] / max(idle["reads"]["latency"]["p99"], 1e-9)
    return r


def report(r: dict[str, Any]) -> None:
    idle, loaded, p = r["idle"], r["loaded"], r["poll"]
    heading(f"many_jobs: {r['jobs']:,} watched non-terminal jobs in one gateway process vs the same app idle")
    row(
        "poll settings",
        f"every {p['max_s']:g}s +-{p['jitter']:.0%}",
        f"lane: concurrency {p['concurrency']}, {p['rate_per_s']:g} req/s; simulator in a child process",
    )
    row(
        "jobs created at the vendor + stored",
        r["jobs"],
        f"{r['create_s']:.1f} s ({r['jobs'] / r['create_s']:,.0f} jobs/s, {r['create_concurrency']} at a time)",
    )
    row("watcher.watching() right after watch()", r["watching"])
    row(
        "RSS idle / stored / watched",
        f"{r['rss_idle_kib'] / 1024:.1f} / {r['rss_stored_kib'] / 1024:.1f} / {r['rss_loaded_kib'] / 1024:.1f} MiB",
    )
    row(
        "RSS per job ((watched - idle) / N), target <= 8 KiB",
        f"{r['rss_per_job_kib']:.2f} KiB",
        f"watching alone ((watched - stored) / N): {r['rss_watch_per_job_kib']:.2f} KiB",
    )
    row(f"CPU idle (baseline, {idle['wall_s']:.1f} s, reads on)", f"{idle['cpu_per_s']:.3f} core")
    row(
        f"CPU watching N jobs ({loaded['wall_s']:.1f} s, reads on)",
        f"{loaded['cpu_per_s']:.3f} core",
        f"simulator process: {loaded['sim_cpu_per_s']:.3f} core",
    )
    threads = ", ".join(f"{k} {v:.2f}" for k, v in loaded["threads_cpu_per_s"].items())
    row("  by thread (core)", "", threads)
    row("CPU per vendor poll (above idle), target <= 0.3 ms", f"{r['cpu_ms_per_poll']:.3f} ms")
    row(
        "vendor polls per second (simulator counter)",
        loaded["polls_per_s"],
        f"the cadence asks {r['expected_polls_per_s']:,.0f}/s",
    )
    row("RATIO cadence reached, target >= 0.99", f"{r['cadence_reached']:.3f}")
    s = r["request_lag"]
    row(
        "vendor request lag vs due p50/p90/p99/max",
        f"{s['p50'] * 1000:.0f}/{s['p90'] * 1000:.0f}/{s['p99'] * 1000:.0f}/{s['max'] * 1000:.0f} ms",
        f"n={s['n']:,}; target p99 <= 1 s",
    )
    for name, w in (("idle", idle), ("watching", loaded)):
        rd = w["reads"]
        lat = rd["latency"]
        row(
            f"status reads ({rd['rps']:.0f}/s), {name}: p50 / p99 / max",
            f"{ms(lat['p50'])} / {ms(lat['p99'])} / {ms(lat['max'])}",
            f"n={rd['requests']:,}, non-2xx {rd['non_2xx']}, errors {rd['errors']}",
        )
    row("RATIO read p99 watching / idle (target p99 <= 5 ms)", f"{r['read_p99_ratio']:.1f}x")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = bench_parser(__doc__)
    ap.add_argument("--jobs", type=int, default=None, help="watched jobs (default 10000, --quick 2000)")
    ap.add_argument("--settle", type=float, default=None, help="seconds between watch() and the window (default 12)")
    ap.add_argument("--create-concurrency", type=int, default=50)
    ap.add_argument("--lane-rate", type=float, default=5000.0, help="vendor requests/s the lane allows")
    ap.add_argument("--lane-concurrency", type=int, default=64, help="vendor requests in flight the lane allows")
    args = parse_bench_args(ap, argv, {"jobs": (10_000, 2000), "duration": (20.0, 8.0), "settle": (12.0, 11.0)})
    if not 1 <= args.jobs <= 100_000:
        ap.error("--jobs must be from 1 to 100000")
    budget = 2 * args.duration + args.settle + args.jobs / 50 + 90
    return bench_main(
        args,
        lambda: run(
            args.jobs, args.duration, args.settle, args.create_concurrency, args.lane_rate, args.lane_concurrency
        ),
        report,
        budget_s=budget,
    )


if __name__ == "__main__":
    main()
    sys.exit(0)
