"""Coalescing: many readers of one job cost the vendor no more than the gateway's own poll schedule.

One process, loopback only: the vendor simulators (step 3600 s and the CAMB task pinned to PENDING, so the job
never finishes) and the real gateway app (SQLite store in a temp dir). One CAMB job is submitted through
`POST /v1/jobs`; then for D seconds C readers hit it: long pollers looping `GET ?wait=W&version=N`, SSE
streams and plain `GET`s in a tight loop. The simulator's own counter of `GET /translate/{task_id}` gives the
vendor status requests the gateway made.

Baseline, same run, same simulator: the same number of clients poll CAMB directly as CAMB's docs recommend
(ask at once, then after 1 s, doubling, capped at 10 s), for the same D, against a second pinned task.

    .venv/bin/python bench/coalescing.py [--duration 10] [--quick] [--json out.json]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    CAMB_PREFIX,
    CAMB_STATUS,
    auth,
    bench_main,
    bench_parser,
    create_camb_task,
    gateway_app,
    heading,
    parse_bench_args,
    pin_camb_task,
    reset_sim_stats,
    row,
    sim_stats,
    simulators_in_process,
    submit_pending_camb_job,
    vendor_auth,
)

#: CAMB's documented polling guidance, also the gateway's default poll settings
CAMB_SCHEDULE = {"initial_s": 1.0, "factor": 2.0, "max_s": 10.0}
JITTER = 0.1  # the gateway's default; the tick bound below uses it


@dataclass
class Counts:
    long_poll: int = 0
    plain: int = 0
    sse_streams: int = 0
    sse_events: int = 0
    errors: int = 0


def poll_ticks(schedule: dict[str, float], jitter: float, elapsed: float, changes_at_first_poll: bool = True) -> int:
    """The most polls the engine can make in `elapsed` seconds after watching a job.

    Every delay is at least interval * (1 - jitter). The interval starts at initial_s, is multiplied by factor
    after a poll that saw no change (capped at max_s) and goes back to initial_s after a change; here the only
    change is the first poll (queued -> running)."""
    t, n, interval, first = 0.0, 0, schedule["initial_s"], True
    while True:
        t += interval * (1 - jitter)
        if t > elapsed:
            return n
        n += 1
        if first and changes_at_first_poll:
            interval = schedule["initial_s"]
        else:
            interval = min(schedule["max_s"], interval * schedule["factor"])
        first = False


async def _reads(deadline: float, counts: Counts, read: Callable[[float], Awaitable[bool]]) -> None:
    """`read(seconds left)` over and over until the deadline; a read that fails (False, or a broken connection)
    counts as an error and waits 0.1 s before the next."""
    loop = asyncio.get_running_loop()
    while (left := deadline - loop.time()) > 0.05:
        try:
            ok = await read(left)
        except aiohttp.ClientError:
            ok = False
        if not ok:
            counts.errors += 1
            await asyncio.sleep(0.1)


async def _long_poller(session, url: str, version: int, deadline: float, wait_s: float, counts: Counts) -> None:
    async def poll(left: float) -> bool:
        nonlocal version
        async with session.get(f"{url}?wait={min(wait_s, left):.2f}&version={version}", headers=auth()) as resp:
            body = await resp.json()
        if resp.status != 200:
            return False
        version = body["version"]
        counts.long_poll += 1
        return True

    await _reads(deadline, counts, poll)


async def _plain_getter(session, url: str, deadline: float, counts: Counts) -> None:
    async def get(left: float) -> bool:
        async with session.get(url, headers=auth()) as resp:
            await resp.json()
        if resp.status != 200:
            return False
        counts.plain += 1
        return True

    await _reads(deadline, counts, get)


async def _sse_reader(session, url: str, deadline: float, counts: Counts) -> None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(deadline):
            async with session.get(url, headers=auth()) as resp:
                if resp.status != 200:
                    counts.errors += 1
                    return
                counts.sse_streams += 1
                async for line in resp.content:
                    if line.startswith(b"event: job"):
                        counts.sse_events += 1
    except TimeoutError:
        pass  # the stream was still open at the end of the run: expected
    except aiohttp.ClientError:
        counts.errors += 1
    assert loop.time() <= deadline + 5


async def _direct_client(session, url: str, deadline: float, schedule: dict[str, float], counter: list[int]) -> None:
    """A client polling the vendor itself: ask at once, then after initial_s, doubling, capped at max_s."""
    loop = asyncio.get_running_loop()
    interval = schedule["initial_s"]
    while loop.time() < deadline:
        async with session.get(url, headers=vendor_auth()) as resp:
            await resp.json()
        counter[0] += 1
        left = deadline - loop.time()
        if left <= interval:
            return
        await asyncio.sleep(interval)
        interval = min(schedule["max_s"], interval * schedule["factor"])


async def run(
    duration: float, long_pollers: int, sse: int, plain: int, wait_s: float, poll: dict[str, float]
) -> dict[str, Any]:
    clients = long_pollers + sse + plain
    poll_settings = {**poll, "jitter": JITTER}
    with tempfile.TemporaryDirectory(prefix="bench-coalescing-") as tmp:
        async with (
            simulators_in_process(step_s=3600.0) as sim_url,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
        ):
            loop = asyncio.get_running_loop()
            # -- through the gateway ------------------------------------------------------------------
            async with gateway_app(sim_url, Path(tmp) / "state", poll_settings) as gw:
                t_submit = loop.time()
                job = await submit_pending_camb_job(session, gw.url, sim_url)
                await reset_sim_stats(session, sim_url)
                job_url = gw.url + f"/v1/jobs/{job['id']}"
                counts = Counts()
                deadline = loop.time() + duration
                tasks = [
                    *(
                        asyncio.create_task(_long_poller(session, job_url, job["version"], deadline, wait_s, counts))
                        for _ in range(long_pollers)
                    ),
                    *(
                        asyncio.create_task(_sse_reader(session, job_url + "/events", deadline, counts))
                        for _ in range(sse)
                    ),
                    *(asyncio.create_task(_plain_getter(session, job_url, deadline, counts)) for _ in range(plain)),
                ]
                _, pending = await asyncio.wait(tasks, timeout=duration + wait_s + 10)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                async with session.get(job_url, headers=auth()) as resp:
                    final = await resp.json()
                gateway_stats = await sim_stats(session, sim_url)
                ticks = poll_ticks(poll, JITTER, loop.time() - t_submit)  # the whole time the job was watched
            gateway_vendor = gateway_stats.get(CAMB_STATUS, 0)

            # -- baseline: the same clients polling the vendor directly (the gateway is stopped) ---------
            direct_task = await create_camb_task(session, sim_url)
            await pin_camb_task(session, sim_url, direct_task)
            await reset_sim_stats(session, sim_url)
            counter = [0]
            deadline = loop.time() + duration
            direct_url = f"{sim_url}{CAMB_PREFIX}/translate/{direct_task}"
            tasks = [
                asyncio.create_task(_direct_client(session, direct_url, deadline, CAMB_SCHEDULE, counter))
                for _ in range(clients)
            ]
            _, pending = await asyncio.wait(tasks, timeout=duration + 10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            direct_vendor = (await sim_stats(session, sim_url)).get(CAMB_STATUS, 0)

    reader_requests = counts.long_poll + counts.plain + counts.sse_streams
    return {
        "duration_s": duration,
        "poll": poll_settings,
        "clients": clients,
        "long_pollers": long_pollers,
        "sse_streams": sse,
        "plain_getters": plain,
        "wait_s": wait_s,
        "reader_requests": reader_requests,
        "long_poll_responses": counts.long_poll,
        "plain_responses": counts.plain,
        "sse_streams_opened": counts.sse_streams,
        "sse_events": counts.sse_events,
        "reader_errors": counts.errors,
        "gateway_vendor_requests": gateway_vendor,
        "gateway_vendor_other": {k: v for k, v in gateway_stats.items() if k != CAMB_STATUS},
        "poll_ticks": ticks,
        "ticks_ok": gateway_vendor <= ticks + 1,
        "direct_vendor_requests": direct_vendor,
        "direct_client_requests": counter[0],
        "clients_per_upstream": clients / max(1, gateway_vendor),
        "reader_requests_per_upstream": reader_requests / max(1, gateway_vendor),
        "ratio_direct_over_gateway": direct_vendor / max(1, gateway_vendor),
        "final_job_version": final.get("version"),
        "final_job_state": final.get("state"),
    }


def report(r: dict[str, Any]) -> None:
    p = r["poll"]
    heading("coalescing: one job, many readers (gateway) vs the same clients polling CAMB directly")
    row("duration D (each phase)", f"{r['duration_s']:g} s")
    row(
        "poll schedule (gateway)",
        f"{p['initial_s']:g}s x{p['factor']:g} cap {p['max_s']:g}s",
        f"jitter +-{p['jitter']:.0%}",
    )
    row("poll schedule (direct clients, CAMB docs)", "1s x2 cap 10s", "first request at once")
    row(
        "concurrent clients",
        r["clients"],
        f"{r['long_pollers']} long-poll (wait={r['wait_s']:g}s) + {r['sse_streams']} SSE "
        f"+ {r['plain_getters']} plain GET loops",
    )
    row("reader requests served (gateway)", r["reader_requests"])
    row("  long-poll responses", r["long_poll_responses"])
    row("  plain GET responses", r["plain_responses"])
    row("  SSE streams opened / events received", f"{r['sse_streams_opened']} / {r['sse_events']}")
    row("  reader errors", r["reader_errors"])
    row(
        "vendor status requests through the gateway",
        r["gateway_vendor_requests"],
        f"other vendor requests: {r['gateway_vendor_other'] or 'none'}",
    )
    row("vendor status requests, direct polling", r["direct_vendor_requests"])
    row("clients per upstream request", r["clients_per_upstream"])
    row("reader requests per upstream request", r["reader_requests_per_upstream"])
    row("RATIO direct / gateway vendor requests", f"{r['ratio_direct_over_gateway']:.1f}x")
    verdict = "OK" if r["ticks_ok"] else "FAILED"
    print(
        f"  sanity: gateway vendor requests {r['gateway_vendor_requests']} <= poll ticks {r['poll_ticks']} + 1"
        f" (schedule bound over submit..end): {verdict}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = bench_parser(__doc__)
    ap.add_argument("--long-pollers", type=int, default=None)
    ap.add_argument("--sse", type=int, default=None)
    ap.add_argument("--plain", type=int, default=None)
    ap.add_argument("--wait", type=float, default=2.0, help="long-poll wait seconds (default 2)")
    ap.add_argument(
        "--short-schedule", action="store_true", help="gateway polls 0.5s x2 cap 2s instead of CAMB's 1s x2 cap 10s"
    )
    args = parse_bench_args(
        ap, argv, {"duration": (10.0, 5.0), "long_pollers": (200, 50), "sse": (50, 10), "plain": (20, 5)}
    )
    poll = {"initial_s": 0.5, "factor": 2.0, "max_s": 2.0} if args.short_schedule else dict(CAMB_SCHEDULE)
    return bench_main(
        args,
        lambda: run(args.duration, args.long_pollers, args.sse, args.plain, args.wait, poll),
        report,
        budget_s=2 * args.duration + args.wait + 60,
    )


if __name__ == "__main__":
    sys.exit(0 if main()["ticks_ok"] else 1)
