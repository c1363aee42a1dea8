"""The client commands `submit`, `status`, `wait` and `result`: a thin HTTP client of the gateway API."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import aiohttp

EXIT_FAILED = 1
EXIT_USAGE = 2


def load_json_arg(text: str) -> Any:
    """A JSON value from the command line, or from a file when it starts with @."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            return json.load(fh)
    return json.loads(text)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _problem_text(status: int, body: Any) -> str:
    if isinstance(body, dict) and "code" in body:
        return f"HTTP {status} {body['code']}: {body.get('detail') or body.get('title', '')}"
    return f"HTTP {status}"


async def _request(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, url, **kw) as resp:
        try:
            body = await resp.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = None
        return resp.status, body


def _progress_line(job: dict[str, Any]) -> str:
    progress = job.get("progress")
    bar = ""
    if isinstance(progress, int):
        filled = progress // 5
        bar = f" [{'#' * filled}{'.' * (20 - filled)}] {progress:3d}%"
    stage = f" stage={job['stage']}" if job.get("stage") else ""
    stale = " (stale)" if job.get("stale") else ""
    return f"{job['id']} {job['state']}{bar}{stage} vendor={job.get('vendor_status')} v{job['version']}{stale}"


async def run_client(args: argparse.Namespace, base: str, key: str) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        try:
            if args.command == "submit":
                return await _submit(session, base, args)
            if args.command == "status":
                status, body = await _request(session, "GET", f"{base}/v1/jobs/{args.job_id}")
                return _show(status, body)
            if args.command == "result":
                status, body = await _request(session, "GET", f"{base}/v1/jobs/{args.job_id}/result")
                return _show(status, body)
            return await _wait(session, base, args)
        except aiohttp.ClientError as exc:
            print(f"gateway: cannot reach {base}: {type(exc).__name__}", file=sys.stderr)
            return EXIT_FAILED


def _show(status: int, body: Any) -> int:
    if 200 <= status < 300:
        _print_json(body)
        return 0
    print(f"gateway: {_problem_text(status, body)}", file=sys.stderr)
    return EXIT_FAILED


async def _submit(session: aiohttp.ClientSession, base: str, args: argparse.Namespace) -> int:
    try:
        data = load_json_arg(args.input)
    except (OSError, ValueError) as exc:
        print(f"gateway: --input is not JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    body: dict[str, Any] = {"input": data}
    body["provider" if args.provider else "route"] = args.provider or args.route
    if args.webhook_url:
        body["webhook_url"] = args.webhook_url
    extra = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    status, answer = await _request(session, "POST", f"{base}/v1/jobs", json=body, headers=extra)
    return _show(status, answer)


async def _wait(session: aiohttp.ClientSession, base: str, args: argparse.Namespace) -> int:
    """Long-poll until terminal, redrawing one progress line on a terminal (a line per change otherwise)."""
    deadline = time.monotonic() + args.timeout
    live = sys.stdout.isatty()
    status, job = await _request(session, "GET", f"{base}/v1/jobs/{args.job_id}")
    if status != 200:
        return _show(status, job)
    while True:
        line = _progress_line(job)
        print(("\r\033[K" + line) if live else line, end="" if live else "\n", flush=True)
        if job["terminal"]:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            print("\ngateway: gave up waiting" if live else "gateway: gave up waiting", file=sys.stderr)
            return EXIT_FAILED
        wait = min(30.0, left)
        status, nxt = await _request(
            session, "GET", f"{base}/v1/jobs/{args.job_id}", params={"wait": f"{wait:.1f}", "version": job["version"]}
        )
        if status != 200:
            return _show(status, nxt)
        job = nxt
    if live:
        print()
    return 0 if job["state"] in ("succeeded", "completed_with_issues") else EXIT_FAILED
