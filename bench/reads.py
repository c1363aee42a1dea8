"""Cached status reads: `GET /v1/jobs/{id}` through the gateway against a bare aiohttp handler serving the same bytes.

Both servers run alone on CPU 0 (taskset), one after the other; wrk (Debian's, one thread) runs on CPU 1, and so
does the vendor simulator. The gateway is `gateway serve --demo --sim-url ...` in a child process: bearer-key auth,
the tenant check, the access log (INFO lines to its stderr, here a file) and the metrics are all on. The job read
is a CAMB job pinned to PENDING at the simulator, so it stays watched (polled every 5 s, the demo's cap). Its
answer is read once and handed to the bare handler, which serves exactly those bytes.

1. throughput: `wrk -t1 -c64` against each: requests/s, and the gateway's share of the bare figure;
2. latency at a fixed rate: wrk paced to 1,000 requests/s (10 connections, exponential gaps) against each: the
   gateway's p50/p99 minus the bare handler's (the latency the gateway adds to a direct read of the same bytes).

The machine is shared (2 cores), so both servers stay up and the measurements alternate in short rounds
(gateway, bare, gateway, bare, ...): a burst of outside load hits both alike. Each figure is the median over the
rounds; the throughput ratio is also given from each server's best round (the least disturbed).

    .venv/bin/python bench/reads.py [--duration 10] [--quick] [--rate 1000] [--json out.json]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from _common import (
    ROOT,
    TICK,
    auth,
    bench_main,
    bench_parser,
    child_server,
    cpu_seconds_of,
    free_port,
    heading,
    ms,
    parse_bench_args,
    require_wrk,
    row,
    run_wrk,
    simulators_subprocess,
    submit_pending_camb_job,
)

SERVER_CPU = "0"
LOAD_CPU = "1"


async def _job_and_body(gateway_url: str, sim_url: str) -> tuple[str, bytes, dict[str, str]]:
    async with aiohttp.ClientSession() as session:
        job = await submit_pending_camb_job(session, gateway_url, sim_url)
        path = f"/v1/jobs/{job['id']}"
        await asyncio.sleep(2.0)  # the first polls (queued -> running) are done; the job sits on its cadence
        async with session.get(gateway_url + path, headers=auth()) as resp:
            body = await resp.read()
            assert resp.status == 200, body
            headers = {k: v for k, v in resp.headers.items() if k.lower() in ("etag", "cache-control")}
    return path, body, headers


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _core_times(cpu: str) -> tuple[float, float, float]:
    """Seconds CPU `cpu` has spent in user code, in the kernel and in softirqs (packets) since boot (/proc/stat)."""
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(f"cpu{cpu} "):
                user, nice, system, _idle, _iowait, _irq, softirq = (int(x) for x in line.split()[1:8])
                return (user + nice) / TICK, system / TICK, softirq / TICK
    raise RuntimeError(f"cpu{cpu} is not in /proc/stat")


def _wakeups(cpu: str) -> int | None:
    """Function-call interrupts CPU `cpu` has received (x86 /proc/interrupts "CAL": mostly another core waking it
    when it idles); None where the row is not there."""
    with open("/proc/interrupts", encoding="ascii") as fh:
        for line in fh:
            fields = line.split()
            if fields and fields[0] == "CAL:":
                return int(fields[1 + int(cpu)])
    return None


def _alternate(urls: dict[str, str], pids: dict[str, int], rounds: int, seconds: float, rate: float) -> dict[str, Any]:
    """`rounds` rounds of wrk against each URL in turn; per server the runs (with the server's CPU seconds per
    request, read from /proc) and the medians of their figures. Also per request: where the server's core spent
    its time (user, kernel, softirq) and how often the load generator's core was woken (`_wakeups`)."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            connections = 10 if rate else 64
            cpu0, core0, woken0 = cpu_seconds_of(pids[name]), _core_times(SERVER_CPU), _wakeups(LOAD_CPU)
            done = run_wrk(url, duration_s=seconds, connections=connections, cpus=LOAD_CPU, rate=rate, headers=auth())
            requests = max(1, done["requests"])
            done["cpu_per_request_s"] = (cpu_seconds_of(pids[name]) - cpu0) / requests
            core1 = _core_times(SERVER_CPU)
            done["core_per_request_s"] = [(b - a) / requests for a, b in zip(core0, core1, strict=True)]
            woken1 = _wakeups(LOAD_CPU)
            done["wakeups_per_request"] = None if woken0 is None or woken1 is None else (woken1 - woken0) / requests
            runs[name].append(done)
    out: dict[str, Any] = {}
    for name, done in runs.items():
        out[name] = {
            "runs": done,
            "rps": _median([r["rps"] for r in done]),
            "best_rps": max(r["rps"] for r in done),
            "errors": sum(r["errors"] for r in done),
            "cpu_per_request_s": _median([r["cpu_per_request_s"] for r in done]),
            "core_per_request_s": [_median([r["core_per_request_s"][i] for r in done]) for i in range(3)],
            "wakeups_per_request": None
            if any(r["wakeups_per_request"] is None for r in done)
            else _median([r["wakeups_per_request"] for r in done]),
            "latency": {q: _median([r["latency"][q] for r in done]) for q in ("p50", "p90", "p99", "max")},
        }
    return out


def _measure(urls: dict[str, str], pids: dict[str, int], duration: float, rate: float) -> dict[str, Any]:
    for url in urls.values():
        run_wrk(url, duration_s=1, connections=64, cpus=LOAD_CPU, headers=auth())  # warm-up
    rounds = max(2, round(duration / 2))
    through = _alternate(urls, pids, rounds, duration / rounds, 0.0)
    paced = _alternate(urls, pids, max(2, rounds // 2), 2 * duration / rounds, rate)
    return {name: {"throughput": through[name], "paced": paced[name]} for name in urls}


async def run(duration: float, rate: float) -> dict[str, Any]:
    require_wrk()
    r: dict[str, Any] = {"duration_s": duration, "rate": rate}
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as tmp:
        tmpdir = Path(tmp)
        async with simulators_subprocess(step_s=3600.0, cpus=LOAD_CPU) as (sim_url, _):
            port = free_port()
            gateway_url = f"http://127.0.0.1:{port}"
            argv = [sys.executable, "-m", "gateway", "serve", "--demo", "--sim-url", sim_url]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            log_path = tmpdir / "gateway.log"
            async with child_server(
                argv, gateway_url + "/readyz", name="the gateway", cpus=SERVER_CPU, stderr_path=log_path
            ) as gateway_pid:
                path, body, headers = await _job_and_body(gateway_url, sim_url)
                r["body_bytes"] = len(body)
                r["response_headers"] = headers
                body_file = tmpdir / "body.json"
                body_file.write_bytes(body)
                bare_port = free_port()
                bare_url = f"http://127.0.0.1:{bare_port}"
                bare = [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(bare_port), path, str(body_file)]
                async with child_server(
                    bare, bare_url + "/healthz", name="the bare handler", cpus=SERVER_CPU
                ) as bare_pid:
                    lines_before = log_path.read_bytes().count(b"gateway.access")
                    urls = {"gateway": gateway_url + path, "bare": bare_url + path}
                    pids = {"gateway": gateway_pid, "bare": bare_pid}
                    r.update(await asyncio.to_thread(_measure, urls, pids, duration, rate))
                    r["access_log_lines"] = log_path.read_bytes().count(b"gateway.access") - lines_before
    g, b = r["gateway"], r["bare"]
    r["throughput_ratio"] = g["throughput"]["rps"] / max(b["throughput"]["rps"], 1e-9)
    r["throughput_ratio_best"] = g["throughput"]["best_rps"] / max(b["throughput"]["best_rps"], 1e-9)
    # CPU per request is what decides throughput on a core of one's own, and is steadier under outside load
    r["cpu_ratio"] = b["throughput"]["cpu_per_request_s"] / max(g["throughput"]["cpu_per_request_s"], 1e-12)
    r["added_p50_s"] = g["paced"]["latency"]["p50"] - b["paced"]["latency"]["p50"]
    r["added_p99_s"] = g["paced"]["latency"]["p99"] - b["paced"]["latency"]["p99"]
    return r


def report(r: dict[str, Any]) -> None:
    g_cpu, b_cpu = r["gateway"]["throughput"]["cpu_per_request_s"], r["bare"]["throughput"]["cpu_per_request_s"]
    heading("reads: cached GET /v1/jobs/{id} through the gateway vs a bare aiohttp handler, same bytes")
    row("body", f"{r['body_bytes']:,} B", f"headers: {r['response_headers'] or 'none'}")
    row("servers on CPU 0, wrk (1 thread) on CPU 1", f"{r['duration_s']:g} s", "per server, in alternating rounds")
    for name in ("gateway", "bare"):
        t = r[name]["throughput"]
        rounds = " ".join(f"{x['rps']:,.0f}" for x in t["runs"])
        row(f"{name}: requests/s, wrk -c64 (median)", f"{t['rps']:,.0f}", f"rounds: {rounds}; errors {t['errors']}")
    row("RATIO gateway / bare requests/s (target >= 0.6)", f"{r['throughput_ratio']:.2f}")
    row("RATIO of the best rounds", f"{r['throughput_ratio_best']:.2f}")
    row(
        "server CPU per request, gateway / bare",
        f"{g_cpu * 1e6:.0f} / {b_cpu * 1e6:.0f} us",
        f"RATIO bare / gateway {r['cpu_ratio']:.2f} (requests/s a free core would give)",
    )
    for name in ("gateway", "bare"):
        t = r[name]["throughput"]
        user, kernel, softirq = (x * 1e6 for x in t["core_per_request_s"])
        woken = t["wakeups_per_request"]
        row(
            f"{name}: CPU 0 per request, user / kernel / softirq",
            f"{user:.1f} / {kernel:.1f} / {softirq:.1f} us",
            "" if woken is None else f"wrk's core woken {woken:.2f} times per request",
        )
    for name in ("gateway", "bare"):
        p = r[name]["paced"]
        rps = _median([x["rps"] for x in p["runs"]])
        row(
            f"{name}: paced {rps:,.0f} req/s: p50 / p99 (median)",
            f"{ms(p['latency']['p50'])} / {ms(p['latency']['p99'])}",
            f"max {ms(p['latency']['max'])}, errors {p['errors']}",
        )
    row("added latency p50 (target <= 0.3 ms)", ms(r["added_p50_s"]))
    row("added latency p99 (target <= 2 ms)", ms(r["added_p99_s"]))
    row("access log lines written during the gateway runs", r["access_log_lines"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = bench_parser(__doc__)
    ap.add_argument("--rate", type=float, default=1000.0, help="requests/s of the latency runs (default 1000)")
    args = parse_bench_args(ap, argv, {"duration": (10.0, 4.0)})
    return bench_main(args, lambda: run(args.duration, args.rate), report, budget_s=6 * args.duration + 120)


if __name__ == "__main__":
    main()
    sys.exit(0)
