"""`make bench`: the gateway's benchmarks, each printing its figures as ratios against a baseline measured in
the same run, then one summary table of the targets (issue 10's "Done when"). Loopback only; every benchmark
is bounded in count and time.

    .venv/bin/python bench/run.py                   # full: 10 s read windows, 10,000 watched jobs, 20 s windows
    .venv/bin/python bench/run.py --quick           # smaller numbers: 4 s read windows, 2,000 jobs, 8 s windows
    .venv/bin/python bench/run.py --only reads      # one benchmark (reads, many_jobs, normalize, coalescing)

Each benchmark runs in its own child process (so one's memory does not show in the other's RSS). The read
benchmark pins the servers to CPU 0 and wrk to CPU 1 (taskset): run it on a machine that is otherwise quiet.
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
CHILD_TIMEOUT_S = 420
BENCHES = ("reads", "many_jobs", "normalize", "coalescing")


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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def targets(figures: dict[str, dict[str, Any] | None]) -> list[tuple[str, str, str, str, bool | None]]:
    """(figure, measured, baseline measured in the same run, target, met) for every target of the issue."""
    rows: list[tuple[str, str, str, str, bool | None]] = []

    def row(figure: str, measured: str, baseline: str, target: str, met: bool | None) -> None:
        rows.append((figure, measured, baseline, target, met))

    rd = figures.get("reads")
    if rd:
        g, b = rd["gateway"], rd["bare"]
        row(
            "cached status reads/s, gateway / bare aiohttp",
            f"{g['throughput']['rps']:,.0f}/s",
            f"{b['throughput']['rps']:,.0f}/s bare",
            f"{rd['throughput_ratio']:.2f} (>= 0.60)",
            rd["throughput_ratio"] >= 0.6,
        )
        for q, limit in (("p50", 0.3e-3), ("p99", 2e-3)):
            added = rd[f"added_{q}_s"]
            row(
                f"added read latency {q} at {rd['rate']:,.0f} req/s",
                _ms(g["paced"]["latency"][q]),
                f"{_ms(b['paced']['latency'][q])} bare",
                f"+{_ms(added)} (<= {_ms(limit)})",
                added <= limit,
            )
    mj = figures.get("many_jobs")
    if mj:
        n = f"{mj['jobs']:,} jobs"
        idle, loaded = mj["idle"], mj["loaded"]
        row(
            f"CPU per vendor poll, {n}",
            f"{mj['cpu_ms_per_poll']:.3f} ms",
            f"{idle['cpu_per_s']:.3f} core idle",
            "<= 0.300 ms",
            mj["cpu_ms_per_poll"] <= 0.3,
        )
        row(
            f"cadence reached, {n} at 10 s",
            f"{loaded['polls_per_s']:,.0f} polls/s",
            f"{mj['expected_polls_per_s']:,.0f}/s asked",
            f"{mj['cadence_reached']:.3f} (>= 0.99)",
            mj["cadence_reached"] >= 0.99,
        )
        lag = mj["request_lag"]
        row(
            "vendor request lag behind due, p99",
            _ms(lag["p99"]),
            f"p50 {_ms(lag['p50'])}",
            "<= 1,000 ms",
            lag["p99"] <= 1.0,
        )
        r0, r1 = idle["reads"]["latency"], loaded["reads"]["latency"]
        row(
            f"status read p99 at 100/s while watching {n}",
            _ms(r1["p99"]),
            f"{_ms(r0['p99'])} idle",
            f"{mj['read_p99_ratio']:.1f}x idle (<= 5 ms)",
            r1["p99"] <= 5e-3,
        )
        row(
            "RSS per watched job",
            f"{mj['rss_per_job_kib']:.2f} KiB",
            f"{mj['rss_idle_kib'] / 1024:.0f} MiB idle",
            "<= 8 KiB",
            mj["rss_per_job_kib"] <= 8,
        )
    nz = figures.get("normalize")
    if nz:
        row(
            f"normalize {nz['segments']:,} segments, {nz['invalid']} invalid",
            _ms(nz["dirty_s"]),
            f"{_ms(nz['clean_s'])} all valid",
            f"{nz['ratio_dirty_over_clean']:.2f}x (<= 5 ms)",
            nz["dirty_s"] <= 5e-3,
        )
        row(
            "  every valid value kept",
            f"{nz['segments_kept']:,} segments",
            f"{nz['segments']:,} sent",
            "all",
            nz["every_valid_value_kept"],
        )
    co = figures.get("coalescing")
    if co:
        row(
            f"vendor requests, {co['clients']} readers of one job",
            f"{co['gateway_vendor_requests']:,}",
            f"{co['direct_vendor_requests']:,} direct",
            f"{co['ratio_direct_over_gateway']:.0f}x fewer (<= ticks+1)",
            co["ticks_ok"],
        )
    return rows


def summary(figures: dict[str, dict[str, Any] | None], timings: dict[str, float]) -> bool:
    print("\n== summary: targets, each against a baseline measured in this run " + "=" * 12)
    header = f"  {'figure':<46} {'measured':>16} {'baseline (same run)':>22}  {'ratio / target':<30} met"
    print(header)
    print("  " + "-" * (len(header) - 2))
    ok = True
    rows = targets(figures)
    for figure, value, baseline, target, met in rows:
        shown = "yes" if met else ("NO" if met is not None else "-")
        print(f"  {figure:<46} {value:>16} {baseline:>22}  {target:<30} {shown}".rstrip())
    print(f"\n  targets met: {sum(1 for row in rows if row[4])} of {len(rows)}")
    for name, found in figures.items():
        if found is None:
            ok = False
            print(f"  {name}: no figures (the benchmark failed)")
    took = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"\n  wall time: {took}, total {sum(timings.values()):.0f} s", flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller numbers and shorter windows")
    ap.add_argument("--only", choices=BENCHES, action="append", help="run only this benchmark (repeatable)")
    ap.add_argument("--jobs", type=int, help="watched jobs for many_jobs (default 10000; quick 2000)")
    ap.add_argument("--json", type=Path, help="also write every figure to this file")
    args = ap.parse_args(argv)
    common = ["--quick"] if args.quick else []
    extra = {"many_jobs": ["--jobs", str(args.jobs)] if args.jobs else []}
    figures: dict[str, dict[str, Any] | None] = {}
    timings: dict[str, float] = {}
    codes = []
    for name in args.only or BENCHES:
        figures[name], timings[name], code = run_child(f"{name}.py", [*common, *extra.get(name, [])])
        codes.append(code)
    ran = summary(figures, timings)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if all(c == 0 for c in codes) and ran else 1  # a missed target is printed, not an error


if __name__ == "__main__":
    sys.exit(main())
