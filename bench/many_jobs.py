"""Many watched jobs: memory and CPU of one gateway process watching N (default 10,000) non-terminal jobs.

The vendor simulators run in a child process (`python -m gateway simulate --step 3600`, so no job ever
finishes), which keeps their CPU and memory out of the measured process; this process is the real gateway
app (create_app, SQLite store in a temp dir, the real Watcher). Loopback only.

Phases, all in one run:
1. baseline: the app with 0 watched jobs, idle for W seconds: CPU seconds per wall second, RSS;
2. N vendor jobs are created in the simulator over its HTTP API (bounded concurrency), each stored as a
   JobRecord through the store already `running` / `PENDING` (what the vendor answers, so every poll is an
   unchanged one, as in the steady state), then all handed to `watcher.watch(job, delay=uniform(0, cap))`
   (a faster path than N submits through the API); RSS and tracemalloc around the watching;
3. steady state: W seconds with every job on the 10 s cap: CPU/s, vendor polls/s (the simulator's own
   counter), scheduling lag (see below), RSS;
4. the same jobs for a few seconds with the provider's lane set back to the default limits
   (concurrency 8, 20 requests/s), to show what those limits allow.

Poll settings: initial_s = max_s = 10 s (the default cap; the default start of 1 s doubling would reach the
cap ~15 s after the jobs are watched, so starting at the cap skips that warm-up), jitter 0.1 (default), and
a lane wide enough for N/10 polls a second (`--lane-rate`, `--lane-concurrency`).

Scheduling lag is read without changing the engine: the bench wraps the Watcher's `_schedule` and
`_start_poll` and the provider's `fetch_status` on the live instances, and reports how late the scheduler
started each poll, and how late its vendor request left (after the lane's semaphore and rate limiter),
relative to the job's due time.

    .venv/bin/python bench/many_jobs.py [--jobs 10000] [--duration 15] [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    CAMB_BODY,
    CAMB_PREFIX,
    CAMB_STATUS,
    VENDOR_KEY,
    LogTally,
    auth,
    cpu_seconds_of,
    gateway_app,
    heading,
    reset_sim_stats,
    row,
    rss_kib,
    sim_stats,
    simulators_subprocess,
)

from gateway.jobs import new_job_id
from gateway.provider import PollSettings
from gateway.server.keys import GATEWAY, STORE
from gateway.states import State
from gateway.store.records import JobRecord
from gateway.watch.engine import Watcher, now_utc
from gateway.watch.lanes import Lane

CAP_S = 10.0
#: allocations made by the benchmark's own files (the lag probe's dicts) are left out of tracemalloc's figure
BENCH_FILES = str(Path(__file__).resolve().parent / "*")


class LagProbe:
    """How late polls start against their due time, read off the live Watcher and provider instances."""

    def __init__(self, watcher: Watcher, provider_name: str) -> None:
        self.watcher = watcher
        self.due: dict[str, float] = {}
        self.job_of_task: dict[str, str] = {}
        self.start_lag: list[float] = []
        self.request_lag: list[float] = []
        self.recording = False
        schedule, start_poll = watcher._schedule, watcher._start_poll
        provider = watcher.providers[provider_name]
        fetch_status = provider.fetch_status

        def _schedule(job_id: str, delay: float) -> None:
            schedule(job_id, delay)
            self.due[job_id] = watcher._due[job_id]

        def _start_poll(job_id: str):
            if self.recording and job_id in self.due:
                self.start_lag.append(time.monotonic() - self.due[job_id])
            return start_poll(job_id)

        async def _fetch_status(conn, ref):
            if self.recording:
                job_id = self.job_of_task.get(ref.get("task_id"))
                if job_id in self.due:
                    self.request_lag.append(time.monotonic() - self.due[job_id])
            return await fetch_status(conn, ref)

        watcher._schedule = _schedule
        watcher._start_poll = _start_poll
        provider.fetch_status = _fetch_status

    def reset(self) -> None:
        self.start_lag.clear()
        self.request_lag.clear()


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1]}


def thread_cpu() -> dict[str, float]:
    """CPU seconds per live Python thread of this process (from /proc/self/task), by thread name."""
    out: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            out[thread.name] = cpu_seconds_of_task(thread.native_id)
        except OSError:
            continue
    return out


def cpu_seconds_of_task(tid: int | None) -> float:
    with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _api_reader(session, gateway_url: str, latencies: list[float]) -> None:
    """One API read every 0.5 s (GET of an unknown job id: a 404 answered from the store), timed."""
    url = gateway_url + "/v1/jobs/job_" + "0" * 24
    while True:
        started = time.monotonic()
        try:
            async with session.get(url, headers=auth()) as resp:
                await resp.read()
                assert resp.status == 404, resp.status
        except asyncio.CancelledError:
            latencies.append(time.monotonic() - started)  # still unanswered at the window's end: a lower bound
            raise
        latencies.append(time.monotonic() - started)
        await asyncio.sleep(0.5)


async def measure_window(
    seconds: float, sim_pid: int, session, sim_url: str, gateway_url: str, watcher: Watcher | None = None
) -> dict[str, Any]:
    """CPU of this process (all threads, and per thread) and of the simulator over `seconds` of wall time,
    the vendor status requests the simulator counted, the latency of an API read every 0.5 s, and (every
    0.25 s) the watcher's in-flight polls."""
    await reset_sim_stats(session, sim_url)
    api_latency: list[float] = []
    reader = asyncio.create_task(_api_reader(session, gateway_url, api_latency))
    threads0, sim0 = thread_cpu(), cpu_seconds_of(sim_pid)
    cpu0, wall0 = time.process_time(), time.monotonic()
    inflight: list[int] = []
    overdue: list[float] = []
    end = wall0 + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(0.25, left))
        if watcher is not None:
            inflight.append(len(watcher._inflight))
            now = time.monotonic()
            overdue.append(max(0.0, now - watcher._heap[0][0]) if watcher._heap else 0.0)
    cpu1, wall1 = time.process_time(), time.monotonic()
    threads1, sim1 = thread_cpu(), cpu_seconds_of(sim_pid)
    reader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await reader
    wall = wall1 - wall0
    polls = (await sim_stats(session, sim_url)).get(CAMB_STATUS, 0)
    per_thread = {name: (threads1[name] - threads0.get(name, 0.0)) / wall for name in threads1}
    return {
        "wall_s": wall,
        "cpu_s": cpu1 - cpu0,
        "cpu_per_s": (cpu1 - cpu0) / wall,
        "sim_cpu_per_s": (sim1 - sim0) / wall,
        "polls": polls,
        "polls_per_s": polls / wall,
        "threads_cpu_per_s": {k: v for k, v in sorted(per_thread.items(), key=lambda kv: -kv[1]) if v > 0.001},
        "inflight_mean": sum(inflight) / len(inflight) if inflight else 0.0,
        "inflight_max": max(inflight, default=0),
        "inflight_series": inflight,
        "heap_overdue_max_s": max(overdue, default=0.0),
        "api_read": percentiles(api_latency),
    }


async def create_jobs(app, sim_url: str, n: int, concurrency: int, probe: LagProbe) -> list[JobRecord]:
    """N vendor jobs created in the simulator over its HTTP API and stored as JobRecords (not watched yet)."""
    store = app[STORE]
    # stored as the vendor will answer (running, PENDING): every poll is an unchanged one, the steady state
    running = app[GATEWAY].providers["camb"].normalize({"status": "PENDING", "run_id": None})
    assert running.state is State.RUNNING
    counter = iter(range(n))
    created: list[JobRecord] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in counter:
                async with session.post(
                    sim_url + CAMB_PREFIX + "/translate", json=CAMB_BODY, headers={"x-api-key": VENDOR_KEY}
                ) as resp:
                    body = await resp.json()
                    assert resp.status == 200, body
                now = now_utc()
                record = JobRecord(
                    id=new_job_id(),
                    tenant="demo",
                    provider="camb",
                    vendor_ref={"task_id": body["task_id"]},
                    status=running,
                    created_at=now,
                    updated_at=now,
                )
                job, fresh = await store.create_job(record)
                assert fresh
                probe.job_of_task[body["task_id"]] = job.id
                created.append(job)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return created


def traced_kib(exclude: str) -> tuple[float, float]:
    """tracemalloc's (current, peak) in KiB, current without allocations made by files matching `exclude`."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, exclude)])
    current = sum(stat.size for stat in snapshot.statistics("filename"))
    return current / 1024, tracemalloc.get_traced_memory()[1] / 1024


async def run(
    jobs: int,
    window: float,
    create_concurrency: int,
    lane_rate: float,
    lane_concurrency: int,
    default_lane_window: float,
) -> dict[str, Any]:
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
            await asyncio.sleep(1.0)  # let start-up settle
            gc.collect()
            r["rss_idle_kib"] = rss_kib()
            r["idle"] = await measure_window(window, sim_pid, control, sim_url, gw.url)

            # -- N jobs ----------------------------------------------------------------------------------
            started = time.monotonic()
            created = await create_jobs(gw.app, sim_url, jobs, create_concurrency, probe)
            r["create_s"] = time.monotonic() - started
            gc.collect()
            r["rss_stored_kib"] = rss_kib()
            # watch them all (first polls spread over the cap), then let the polls run for a few seconds
            tracemalloc.start()
            for job in created:
                watcher.watch(job, delay=random.uniform(0.0, CAP_S))
            del created
            r["watching"] = watcher.watching()
            r["traced_watch_only_kib"], _ = traced_kib(BENCH_FILES)  # no poll has run yet: bookkeeping only
            await asyncio.sleep(min(3.0, window))
            gc.collect()
            r["traced_current_kib"], r["traced_peak_kib"] = traced_kib(BENCH_FILES)
            tracemalloc.stop()
            r["rss_watched_kib"] = rss_kib()

            probe.recording = True
            r["loaded"] = await measure_window(window, sim_pid, control, sim_url, gw.url, watcher)
            probe.recording = False
            r["start_lag"] = percentiles(probe.start_lag)
            r["request_lag"] = percentiles(probe.request_lag)
            gc.collect()
            r["rss_loaded_kib"] = rss_kib()
            r["inflight_end"] = len(watcher._inflight)
            r["heap_entries_end"] = len(watcher._heap)

            # -- the default lane limits ---------------------------------------------------------------------
            if default_lane_window > 0:
                defaults = PollSettings(initial_s=CAP_S, max_s=CAP_S)
                watcher.lanes["camb"] = Lane(defaults)
                r["default_lane"] = {"concurrency": defaults.concurrency, "rate_per_s": defaults.rate_per_s}
                await asyncio.sleep(1.0)  # polls already past the old lane drain
                probe.reset()
                probe.recording = True
                r["default"] = await measure_window(default_lane_window, sim_pid, control, sim_url, gw.url, watcher)
                probe.recording = False
                r["default_request_lag"] = percentiles(probe.request_lag)
    idle, loaded = r["idle"], r["loaded"]
    r["expected_polls_per_s"] = jobs / CAP_S
    r["rss_per_job_kib"] = (r["rss_loaded_kib"] - r["rss_idle_kib"]) / jobs
    r["rss_watch_per_job_kib"] = (r["rss_loaded_kib"] - r["rss_stored_kib"]) / jobs
    r["traced_per_job_b"] = r["traced_current_kib"] * 1024 / jobs
    r["traced_watch_only_per_job_b"] = r["traced_watch_only_kib"] * 1024 / jobs
    r["cpu_ratio_loaded_over_idle"] = loaded["cpu_per_s"] / max(idle["cpu_per_s"], 1e-6)
    extra_cpu = loaded["cpu_s"] - idle["cpu_per_s"] * loaded["wall_s"]
    r["cpu_ms_per_poll"] = 1000 * extra_cpu / max(1, loaded["polls"])
    r["polls_achieved_fraction"] = loaded["polls_per_s"] / r["expected_polls_per_s"]
    r["api_read_ratio_p50"] = loaded["api_read"]["p50"] / max(idle["api_read"]["p50"], 1e-6)
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
    row("RSS idle, 0 jobs (baseline)", f"{r['rss_idle_kib'] / 1024:.1f} MiB")
    row("RSS with N jobs stored, not watched", f"{r['rss_stored_kib'] / 1024:.1f} MiB")
    row("RSS watched, 3 s of polling (tracemalloc on)", f"{r['rss_watched_kib'] / 1024:.1f} MiB")
    row("RSS after the steady-state window", f"{r['rss_loaded_kib'] / 1024:.1f} MiB")
    row(
        "RSS per job ((loaded - idle) / N)",
        f"{r['rss_per_job_kib']:.2f} KiB",
        f"watching alone ((loaded - stored) / N): {r['rss_watch_per_job_kib']:.2f} KiB",
    )
    row(
        "tracemalloc held right after watch(), before any poll",
        f"{r['traced_watch_only_kib'] / 1024:.2f} MiB",
        f"{r['traced_watch_only_per_job_b']:.0f} B per job: the scheduler's bookkeeping",
    )
    row(
        "tracemalloc held after 3 s of polling / peak",
        f"{r['traced_current_kib'] / 1024:.2f} / {r['traced_peak_kib'] / 1024:.2f} MiB",
        f"{r['traced_per_job_b']:.0f} B per job (bench's own excluded)",
    )
    row(f"CPU idle, 0 jobs (baseline, {idle['wall_s']:.1f} s)", f"{idle['cpu_per_s']:.4f} core")
    row(
        f"CPU watching N jobs ({loaded['wall_s']:.1f} s)",
        f"{loaded['cpu_per_s']:.3f} core",
        f"simulator process: {loaded['sim_cpu_per_s']:.3f} core",
    )
    threads = ", ".join(f"{k} {v:.2f}" for k, v in loaded["threads_cpu_per_s"].items())
    row("  by thread (core)", "", threads)
    row("RATIO CPU watching / idle", f"{r['cpu_ratio_loaded_over_idle']:.0f}x")
    row("CPU per vendor poll (above idle)", f"{r['cpu_ms_per_poll']:.3f} ms")
    row(
        "vendor polls per second (simulator counter)",
        loaded["polls_per_s"],
        f"the cap asks for {r['expected_polls_per_s']:,.0f}/s",
    )
    row("RATIO polls achieved / polls the cap asks for", f"{r['polls_achieved_fraction']:.3f}")
    for label, key in (("scheduler start lag vs due", "start_lag"), ("vendor request lag vs due", "request_lag")):
        s = r[key]
        row(
            f"{label} p50/p90/p99/max",
            f"{s['p50'] * 1000:.0f}/{s['p90'] * 1000:.0f}/{s['p99'] * 1000:.0f}/{s['max'] * 1000:.0f} ms",
            f"n={s['n']:,}",
        )
    row(
        "in-flight polls during the window, mean / max",
        f"{loaded['inflight_mean']:,.0f} / {loaded['inflight_max']:,}",
        f"at the end: {r['inflight_end']:,}; heap entries {r['heap_entries_end']:,}",
    )
    row("most overdue entry at the scheduler's heap top", f"{loaded['heap_overdue_max_s'] * 1000:.0f} ms")
    a0, a1 = idle["api_read"], loaded["api_read"]
    row(
        "API read (GET /v1/jobs/{id}, 404) p50 / max, idle",
        f"{a0['p50'] * 1000:.1f} / {a0['max'] * 1000:.1f} ms",
        f"n={a0['n']}, one every 0.5 s",
    )
    row("API read p50 / max, watching N jobs", f"{a1['p50'] * 1000:.1f} / {a1['max'] * 1000:.1f} ms", f"n={a1['n']}")
    row("RATIO API read p50 watching / idle", f"{r['api_read_ratio_p50']:,.1f}x")
    if "default" in r:
        d, lane = r["default"], r["default_lane"]
        s = r["default_request_lag"]
        row(
            f"with the DEFAULT lane ({lane['concurrency']} at a time, {lane['rate_per_s']:g}/s): polls/s",
            d["polls_per_s"],
            f"over {d['wall_s']:.1f} s; CPU {d['cpu_per_s']:.3f} core",
        )
        row(
            "  vendor request lag p50/max",
            f"{s['p50']:.1f}/{s['max']:.1f} s",
            f"=> each job polled every ~{r['jobs'] / lane['rate_per_s']:,.0f} s instead of {p['max_s']:g} s",
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=None, help="watched jobs (default 10000, --quick 2000)")
    ap.add_argument("--duration", type=float, default=None, help="seconds of each window (default 15, --quick 5)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--create-concurrency", type=int, default=50)
    ap.add_argument("--lane-rate", type=float, default=5000.0, help="vendor requests/s the lane allows")
    ap.add_argument("--lane-concurrency", type=int, default=64, help="vendor requests in flight the lane allows")
    ap.add_argument(
        "--default-lane-window",
        type=float,
        default=None,
        help="seconds with the default lane limits (default 5, --quick 3; 0 skips)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    args.jobs = args.jobs if args.jobs is not None else (2000 if args.quick else 10_000)
    args.duration = args.duration if args.duration is not None else (5.0 if args.quick else 15.0)
    if args.default_lane_window is None:
        args.default_lane_window = 3.0 if args.quick else 5.0
    if not 1 <= args.jobs <= 100_000:
        ap.error("--jobs must be from 1 to 100000")
    if not 0 < args.duration <= 120:
        ap.error("--duration must be in (0, 120]")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    tally = LogTally.install()
    budget = 3 * args.duration + args.default_lane_window + args.jobs / 100 + 60
    result = asyncio.run(
        asyncio.wait_for(
            run(
                args.jobs,
                args.duration,
                args.create_concurrency,
                args.lane_rate,
                args.lane_concurrency,
                args.default_lane_window,
            ),
            timeout=budget,
        )
    )
    report(result)
    tally.report()
    result["log_records"] = tally.counts
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
