"""Shared plumbing of the benchmarks: the demo wiring on loopback, simulator stats, process figures.

Everything binds 127.0.0.1 only; every helper that waits has a deadline."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config import parse_config
from gateway.server.app import create_app
from gateway.server.run import DEMO_VENDOR_KEY_ENV, demo_config
from gateway.sim.server import build_simulator_app

ROOT = Path(__file__).resolve().parents[1]
CAMB_PREFIX = "/camb/apis"
CAMB_STATUS = "GET /translate/{task_id}"
CAMB_CREATE = "POST /translate"
GATEWAY_KEY = "demo-key"
VENDOR_KEY = os.environ.get(DEMO_VENDOR_KEY_ENV, "demo-vendor-key")
#: a CAMB native create body the simulator accepts (English -> German)
CAMB_BODY = {"source_language": 1, "target_language": 31, "texts": ["hello benchmark"]}


def rss_kib() -> int:
    """This process's resident set size (VmRSS) in KiB."""
    return _status_kib("self", "VmRSS")


def _status_kib(pid: str, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


#: /proc's unit of CPU time: clock ticks per second
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of another process (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- simulators ----------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def simulators_in_process(step_s: float) -> AsyncIterator[str]:
    """Every vendor simulator in this process on 127.0.0.1:<any port>; yields the base URL."""
    runner = web.AppRunner(build_simulator_app(step_s=step_s), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def pinned(argv: Sequence[str], cpus: str | None) -> list[str]:
    """`argv` run on the given CPUs (taskset), or as it is when `cpus` is None."""
    return ["taskset", "-c", cpus, *argv] if cpus is not None else list(argv)


@contextlib.asynccontextmanager
async def child_server(
    argv: Sequence[str],
    probe_url: str,
    *,
    name: str,
    cpus: str | None = None,
    stderr_path: Path | None = None,
    timeout_s: float = 30.0,
) -> AsyncIterator[int]:
    """A server in a child process (dies with this one, optionally pinned to `cpus`), ready once `probe_url`
    answers 200; yields its pid. Its stderr goes to `stderr_path` (else a temp file), never to a pipe."""
    errors = open(stderr_path, "w+b") if stderr_path else tempfile.TemporaryFile()  # noqa: ASYNC230
    proc = await asyncio.create_subprocess_exec(
        *pinned(argv, cpus),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=errors,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                if proc.returncode is not None:
                    errors.seek(0)
                    err = errors.read().decode(errors="replace")
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {err[-2000:]}")
                try:
                    async with session.get(probe_url) as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer on {probe_url} within {timeout_s:g}s")
                await asyncio.sleep(0.1)
        yield proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await asyncio.wait_for(proc.wait(), 10)
        errors.close()


@contextlib.asynccontextmanager
async def simulators_subprocess(step_s: float, *, cpus: str | None = None) -> AsyncIterator[tuple[str, int]]:
    """`python -m gateway simulate` in a child process (dies with this one); yields (base URL, child pid)."""
    port = free_port()
    argv = [sys.executable, "-m", "gateway", "simulate", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    async with child_server(
        [*argv, "--step", str(step_s)], url + CAMB_PREFIX + "/__sim__/stats", name="the simulator", cpus=cpus
    ) as pid:
        yield url, pid


# -- wrk ------------------------------------------------------------------------------------------------

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_report.lua"


def run_wrk(
    url: str,
    *,
    duration_s: float,
    connections: int,
    cpus: str | None = None,
    rate: float = 0.0,
    paths_file: Path | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One wrk run (Debian's wrk, one thread) and its figures: requests/s, latency percentiles in seconds,
    errors. With `rate`, requests are paced (exponential gaps) to about that many per second in total;
    with `paths_file`, each request asks for a random path from it."""
    env = {**os.environ, "WRK_RATE": f"{rate:g}", "WRK_CONNS": str(connections), "WRK_PATHS": str(paths_file or "")}
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    argv += ["-s", str(WRK_SCRIPT), url]
    proc = subprocess.run(pinned(argv, cpus), capture_output=True, text=True, env=env, timeout=duration_s + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-1000:]} {proc.stderr[-1000:]}")
    raw = json.loads(line.split(" ", 1)[1])
    seconds = raw["duration_us"] / 1e6
    errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
    return {
        "requests": raw["requests"],
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "errors": errors,
        "non_2xx": raw["errors_status"],
        "latency": {k[:-3]: raw[k] / 1e6 for k in ("p50_us", "p90_us", "p99_us", "max_us", "mean_us")},
    }


def require_wrk() -> None:
    if subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode != 0:
        raise SystemExit("wrk is not installed: `make bench` installs it (apt-get install wrk)")


async def sim_stats(session: aiohttp.ClientSession, sim_url: str, prefix: str = CAMB_PREFIX) -> dict[str, int]:
    async with session.get(sim_url + prefix + "/__sim__/stats") as resp:
        resp.raise_for_status()
        return (await resp.json())["requests"]


async def reset_sim_stats(session: aiohttp.ClientSession, sim_url: str, prefix: str = CAMB_PREFIX) -> None:
    async with session.delete(sim_url + prefix + "/__sim__/stats") as resp:
        resp.raise_for_status()


# -- the gateway ------------------------------------------------------------------------------------


@dataclass
class RunningGateway:
    app: web.Application
    runner: web.AppRunner
    url: str


@contextlib.asynccontextmanager
async def gateway_app(sim_url: str, state_dir: Path, poll: dict[str, Any]) -> AsyncIterator[RunningGateway]:
    """The real gateway app (demo config, SQLite store in state_dir) on 127.0.0.1:<any port>."""
    config, settings = parse_config(demo_config(sim_url, poll=poll), source="bench")
    app = create_app(config, settings, state_dir=state_dir)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)  # open SSE streams must not hold cleanup
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    gc.freeze()  # as `gateway serve` does once started
    try:
        yield RunningGateway(app=app, runner=runner, url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


def auth(key: str = GATEWAY_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def vendor_auth() -> dict[str, str]:
    """The CAMB simulator's auth header."""
    return {"x-api-key": VENDOR_KEY}


async def create_camb_task(session: aiohttp.ClientSession, sim_url: str) -> str:
    """A CAMB task created at the simulator directly (not through the gateway); its task_id."""
    async with session.post(sim_url + CAMB_PREFIX + "/translate", headers=vendor_auth(), json=CAMB_BODY) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return body["task_id"]


async def pin_camb_task(session: aiohttp.ClientSession, sim_url: str, task_id: str) -> None:
    """Hold a CAMB task at PENDING in the simulator: it never finishes."""
    async with session.post(f"{sim_url}{CAMB_PREFIX}/__sim__/jobs/{task_id}/state", json={"status": "PENDING"}) as resp:
        assert resp.status == 200, await resp.text()


async def submit_pending_camb_job(session: aiohttp.ClientSession, gateway_url: str, sim_url: str) -> dict[str, Any]:
    """A CAMB job submitted through the gateway and pinned to PENDING at the simulator: watched for good."""
    async with session.post(
        gateway_url + "/v1/jobs", headers=auth(), json={"provider": "camb", "input": CAMB_BODY}
    ) as resp:
        job = await resp.json()
        assert resp.status == 201, job
    await pin_camb_task(session, sim_url, job["vendor_ref"]["task_id"])
    return job


class LogTally(logging.Handler):
    """Counts WARNING+ log records by logger (instead of printing tracebacks mid-report); keeps the first of each."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: dict[str, int] = {}
        self.first: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name] = self.counts.get(record.name, 0) + 1
        if record.name not in self.first:
            self.first[record.name] = f"{record.levelname}: {record.getMessage()}"[:200]

    @classmethod
    def install(cls) -> LogTally:
        tally = cls()
        root = logging.getLogger()
        root.addHandler(tally)
        root.setLevel(logging.WARNING)
        return tally

    def report(self) -> None:
        if not self.counts:
            row("log records at WARNING or above", 0)
            return
        for name, count in sorted(self.counts.items()):
            row(f"log records at WARNING+ from {name}", count, f"first: {self.first[name]}")


# -- one command line and one main for every benchmark ---------------------------------------------------


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """The options every benchmark takes: --quick, --duration, --json (each script adds its own)."""
    ap = argparse.ArgumentParser(
        description=(doc or "").split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smaller numbers, shorter windows")
    ap.add_argument("--duration", type=float, default=None, help="seconds of each measuring window")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    return ap


def parse_bench_args(
    ap: argparse.ArgumentParser, argv: list[str] | None, defaults: dict[str, tuple[Any, Any]]
) -> argparse.Namespace:
    """Parse, then fill every option left unset from `defaults` (name -> (full, quick))."""
    args = ap.parse_args(argv)
    for name, (full, quick) in defaults.items():
        if getattr(args, name, None) is None:
            setattr(args, name, quick if args.quick else full)
    if args.duration is not None and not 0 < args.duration <= 120:
        ap.error("--duration must be in (0, 120]")
    return args


def bench_main(
    args: argparse.Namespace,
    run: Callable[[], Awaitable[dict[str, Any]]],
    report: Callable[[dict[str, Any]], None],
    *,
    budget_s: float,
) -> dict[str, Any]:
    """Run one benchmark under a time budget, print its report and the warnings it logged, write --json."""
    tally = LogTally.install()

    async def bounded() -> dict[str, Any]:
        return await asyncio.wait_for(run(), timeout=budget_s)

    result = asyncio.run(bounded())
    report(result)
    tally.report()
    result["log_records"] = tally.counts
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return result


def percentiles(values: list[float]) -> dict[str, float]:
    """n, p50, p90, p99 and max of a list of samples (NaN when empty)."""
    if not values:
        return {"n": 0, "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"n": len(ordered), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1]}


# -- output --------------------------------------------------------------------------------------------


def heading(title: str) -> None:
    print(f"\n== {title} " + "=" * max(2, 74 - len(title)), flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


def row(label: str, value: Any, note: str = "") -> None:
    shown = f"{value:,.3f}" if isinstance(value, float) else (f"{value:,}" if isinstance(value, int) else str(value))
    print(f"  {label:<52} {shown:>14}  {note}".rstrip(), flush=True)
