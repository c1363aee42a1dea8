"""`make bench`: the gateway's benchmarks, each printing its figures as ratios against a baseline measured in
the same run, then one summary table. Loopback only; every benchmark is bounded in count and time.

    .venv/bin/python bench/run.py                   # full: D = 10 s coalescing, 10,000 jobs, 15 s windows
    .venv/bin/python bench/run.py --quick           # smaller numbers: 65 readers, 2,000 jobs, 5 s windows
    .venv/bin/python bench/run.py --duration 8      # seconds of each measuring window

Each benchmark runs in its own child process (so one's memory does not show in the other's RSS).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
#: the most a single benchmark may take before it is stopped
CHILD_TIMEOUT_S = 240


def run_child(script: str, args: list[str]) -> tuple[dict[str, Any] | None, float, int]:
    """Run bench/<script> with --json into a temp file; its output goes straight to ours."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "figures.json"
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [sys.executable, str(HERE / script), *args, "--json", str(out)],
                cwd=HERE.parent,
                timeout=CHILD_TIMEOUT_S,
                check=False,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            print(f"!! {script} did not finish within {CHILD_TIMEOUT_S}s; stopped", flush=True)
            code = 124
        took = time.monotonic() - started
        figures = json.loads(out.read_text()) if out.exists() else None
    return figures, took, code


def summary(co: dict[str, Any] | None, mj: dict[str, Any] | None, timings: dict[str, float]) -> None:
    print("\n== summary: ratios against baselines measured in this run " + "=" * 20)
    header = f"  {'benchmark':<11} {'figure':<48} {'measured':>13} {'baseline (same run)':>24} {'ratio':>11}"
    print(header)
    print("  " + "-" * (len(header) - 2))

    def line(bench: str, figure: str, value: str, baseline: str, ratio: str) -> None:
        print(f"  {bench:<11} {figure:<48} {value:>13} {baseline:>24} {ratio:>11}".rstrip())

    if co:
        d = f"{co['duration_s']:g} s"
        line(
            "coalescing",
            f"vendor status requests, {co['clients']} clients, {d}",
            f"{co['gateway_vendor_requests']:,}",
            f"{co['direct_vendor_requests']:,} polling direct",
            f"{co['ratio_direct_over_gateway']:.1f}x fewer",
        )
        line(
            "coalescing",
            "reader requests served by the gateway",
            f"{co['reader_requests']:,}",
            "",
            f"{co['reader_requests_per_upstream']:,.0f}/upstream",
        )
        line("coalescing", "clients per upstream request", f"{co['clients_per_upstream']:.1f}", "", "")
        line(
            "coalescing",
            f"sanity: gateway vendor requests <= ticks+1 ({co['poll_ticks']}+1)",
            "OK" if co["ticks_ok"] else "FAILED",
            "",
            "",
        )
    else:
        line("coalescing", "(no figures: the benchmark failed)", "", "", "")
    if mj:
        n = f"{mj['jobs']:,}"
        idle, loaded = mj["idle"], mj["loaded"]
        line(
            "many_jobs",
            f"CPU with {n} watched jobs (core-s per s)",
            f"{loaded['cpu_per_s']:.3f}",
            f"{idle['cpu_per_s']:.4f} idle",
            f"{mj['cpu_ratio_loaded_over_idle']:,.0f}x",
        )
        line("many_jobs", "CPU per vendor poll", f"{mj['cpu_ms_per_poll']:.2f} ms", "", "")
        line(
            "many_jobs",
            f"RSS with {n} watched jobs",
            f"{mj['rss_loaded_kib'] / 1024:.1f} MiB",
            f"{mj['rss_idle_kib'] / 1024:.1f} MiB idle",
            f"{mj['rss_loaded_kib'] / mj['rss_idle_kib']:.2f}x",
        )
        line("many_jobs", "RSS per job ((with jobs - idle) / N)", f"{mj['rss_per_job_kib']:.2f} KiB", "", "")
        line(
            "many_jobs",
            "  of which watching ((with jobs - stored) / N)",
            f"{mj['rss_watch_per_job_kib']:.2f} KiB",
            "",
            "",
        )
        line(
            "many_jobs",
            "scheduler bookkeeping per job (tracemalloc)",
            f"{mj['traced_watch_only_per_job_b']:.0f} B",
            "",
            "",
        )
        line(
            "many_jobs",
            "vendor polls per second",
            f"{loaded['polls_per_s']:,.0f}",
            f"{mj['expected_polls_per_s']:,.0f} the cap asks",
            f"{mj['polls_achieved_fraction']:.2f}",
        )
        line(
            "many_jobs",
            "jobs kept on the 10 s cap (polls/s x 10 s)",
            f"{loaded['polls_per_s'] * 10:,.0f}",
            f"{mj['jobs']:,} watched",
            f"{loaded['polls_per_s'] * 10 / mj['jobs']:.2f}",
        )
        lag = mj["request_lag"]
        shown = f"{lag['p50'] * 1000:,.0f} / {lag['p99'] * 1000:,.0f} ms"
        line("many_jobs", "vendor request lag vs due, p50 / p99", shown, "", "")
        a0, a1 = idle["api_read"], loaded["api_read"]
        line(
            "many_jobs",
            "API read latency p50 (GET /v1/jobs/{id})",
            f"{a1['p50'] * 1000:,.1f} ms",
            f"{a0['p50'] * 1000:.1f} ms idle",
            f"{mj['api_read_ratio_p50']:,.1f}x",
        )
        if "default" in mj:
            line(
                "many_jobs",
                "polls/s with the default lane (20 req/s)",
                f"{mj['default']['polls_per_s']:,.1f}",
                f"{mj['expected_polls_per_s']:,.0f} the cap asks",
                f"{mj['default']['polls_per_s'] / mj['expected_polls_per_s']:.3f}",
            )
    else:
        line("many_jobs", "(no figures: the benchmark failed)", "", "", "")
    took = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"\n  wall time: {took}, total {sum(timings.values()):.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller numbers (65 readers, 2,000 jobs, 5 s windows)")
    ap.add_argument("--duration", type=float, help="seconds of each measuring window (default 10 / 15; quick 5)")
    ap.add_argument("--jobs", type=int, help="watched jobs for many_jobs (default 10000; quick 2000)")
    args = ap.parse_args(argv)
    if args.duration is not None and not 0 < args.duration <= 60:
        ap.error("--duration must be in (0, 60]")
    common = ["--quick"] if args.quick else []
    if args.duration is not None:
        common += ["--duration", f"{args.duration:g}"]
    timings: dict[str, float] = {}
    co, timings["coalescing"], co_code = run_child("coalescing.py", common)
    mj_args = [*common, *(["--jobs", str(args.jobs)] if args.jobs else [])]
    mj, timings["many_jobs"], mj_code = run_child("many_jobs.py", mj_args)
    summary(co, mj, timings)
    return 0 if co_code == 0 and mj_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
