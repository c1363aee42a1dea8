"""The client commands (`submit`, `status`, `wait`, `result`, `artifact`, `list`, `cancel`, `attach`,
`providers`, `usage`) on the Python client: human output by default, `--json` for scripts, and exit codes that say
how a job ended."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from gateway.cli_render import WaitDisplay, job_summary, jobs_table, providers_table, result_view, usage_table
from gateway.client import AsyncClient, GatewayError, ProblemError, TransportError, WaitTimeout
from gateway.client.aio import DEFAULT_URL, document_input, text_input
from gateway.models import Job

M = TypeVar("M", bound=BaseModel)

EXIT_OK = 0
#: the gateway answered with an error, or could not be reached
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_ISSUES = 3
EXIT_FAILED = 4
EXIT_CANCELLED = 5
EXIT_TIMEOUT = 6
EXIT_BY_STATE = {"succeeded": EXIT_OK, "completed_with_issues": EXIT_ISSUES, "failed": EXIT_FAILED}
EXIT_BY_STATE["cancelled"] = EXIT_CANCELLED


class UsageError(Exception):
    """The command line asks for something that cannot be done; exit 2."""


def load_json_arg(text: str) -> Any:
    """A JSON value from the command line, or from a file when it starts with @."""
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as fh:
            return json.load(fh)
    return json.loads(text)


def _json_object(text: str, what: str, example: str = "") -> dict[str, Any]:
    """A JSON object given on the command line (or in @file); a UsageError naming `what` when it is not one."""
    try:
        data = load_json_arg(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} must be a JSON object{example}")
    return data


def add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"the gateway (default: $GATEWAY_URL, else {DEFAULT_URL})")
    parser.add_argument("--key", help="the gateway key (default: $GATEWAY_KEY)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def exit_code(job: Job) -> int:
    return EXIT_BY_STATE.get(job.state.value, EXIT_OK)


def _print_json(data: Any) -> None:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    elif isinstance(data, list):
        data = [d.model_dump(mode="json", by_alias=True) if isinstance(d, BaseModel) else d for d in data]
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _show(answer: M, view: Callable[[Console, M], None], args: argparse.Namespace, console: Console) -> int:
    """An answer as JSON (`--json`) or through its human view; the command succeeded."""
    _print_json(answer) if args.json else view(console, answer)
    return EXIT_OK


async def run_client(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("GATEWAY_URL") or DEFAULT_URL
    key = args.key or os.environ.get("GATEWAY_KEY")
    if not key:
        print("gateway: give the gateway key with --key or GATEWAY_KEY (the demo's is demo-key)", file=sys.stderr)
        return EXIT_USAGE
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=max(console.width, 200))  # plain lines, never folded
    try:
        async with AsyncClient(url, key) as client:
            return await COMMANDS[args.command](client, args, console)
    except UsageError as exc:
        return _failed(EXIT_USAGE, f"gateway {args.command}: {exc}")
    except WaitTimeout as exc:
        return _failed(EXIT_TIMEOUT, f"gateway: gave up waiting: {exc}")
    except ProblemError as exc:
        errors = [f"  {'.'.join(str(p) for p in error.get('loc', []))}: {error.get('msg')}" for error in exc.errors]
        return _failed(EXIT_ERROR, f"gateway: {exc}", *errors)
    except TransportError as exc:
        return _failed(EXIT_ERROR, f"gateway: cannot reach {url}: {exc}")
    except GatewayError as exc:
        return _failed(EXIT_ERROR, f"gateway: {exc}")


def _failed(code: int, *lines: str) -> int:
    """What went wrong, on stderr; the command's exit code."""
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _submit_input(args: argparse.Namespace) -> tuple[dict[str, Any], str | None, str | None]:
    """(input, provider, route) from `submit [PROVIDER] [TEXT... | FILE] --from --to` or `--input`."""
    items = list(args.items)
    provider, route = args.provider, args.route
    if provider is None and route is None:
        if not items:
            raise UsageError(
                "name a provider first (gateway submit PROVIDER --from .. --to .. TEXT...) or give --route"
            )
        provider = items.pop(0)
    if args.input is not None:
        if items:
            raise UsageError("give the texts or file, or --input, not both")
        return _json_object(args.input, "--input"), provider, route
    if not items:
        raise UsageError("give the texts to translate, a file, or --input JSON")
    if not args.source or not args.target:
        raise UsageError("give the languages with --from and --to (e.g. --from en-us --to de-de)")
    if len(items) == 1 and not args.text and Path(items[0]).is_file():
        return document_input(args.source, args.target, items[0]), provider, route
    return text_input(args.source, args.target, items), provider, route


def _metadata(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--metadata takes KEY=VALUE, not {pair!r}")
        found[name] = value
    return found


async def cmd_submit(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    data, provider, route = _submit_input(args)
    job = await client.submit(
        data,
        provider=provider,
        route=route,
        webhook_url=args.webhook_url,
        metadata=_metadata(args.metadata),
        idempotency_key=args.idempotency_key,
    )
    if args.wait:
        if not args.json:
            console.print(f"submitted {job.id} to {job.provider}")
        return await _follow(client, job.id, args, console)
    if args.json:
        _print_json(job)
    else:
        console.print(f"submitted [bold]{job.id}[/] to {job.provider} ({job.state.value}, v{job.version})")
        console.print(f"  follow it: gateway wait {job.id}", style="dim")
    return EXIT_OK


async def _follow(client: AsyncClient, job_id: str, args: argparse.Namespace, console: Console) -> int:
    if args.json:
        job = await client.wait(job_id, timeout=args.timeout)
        _print_json(job)
        return exit_code(job)
    with WaitDisplay(console, live=console.is_terminal) as display:
        try:
            job = await client.wait(job_id, timeout=args.timeout, on_update=display.update)
        except WaitTimeout as exc:
            display.update(exc.job)
            raise
    display.finish(job)
    return exit_code(job)


async def cmd_wait(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    return await _follow(client, args.job_id, args, console)


async def cmd_status(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    return _show(await client.get(args.job_id), job_summary, args, console)


async def cmd_result(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    return _show(await client.result(args.job_id), result_view, args, console)


async def cmd_artifact(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    path = await client.artifact(args.job_id, args.output or Path.cwd())
    size = path.stat().st_size
    if args.json:
        _print_json({"job_id": args.job_id, "path": str(path), "size": size})
    else:
        console.print(Text(f"saved {path} ({size:,} bytes)"))
    return EXIT_OK


async def cmd_list(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    filters = {"state": args.state, "provider": args.provider}
    if args.all:
        jobs = [job async for job in client.iter_jobs(**filters, page_size=args.limit)]
        cursor = None
    else:
        page = await client.list_jobs(**filters, limit=args.limit)
        jobs, cursor = page.data, page.next_cursor
    if args.json:
        _print_json({"data": [j.model_dump(mode="json", by_alias=True) for j in jobs], "next_cursor": cursor})
        return EXIT_OK
    if not jobs:
        console.print("no jobs", style="dim")
    else:
        jobs_table(console, jobs)
    if cursor:
        console.print("more jobs: gateway list --all", style="dim")
    return EXIT_OK


async def cmd_cancel(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    return _show(await client.cancel(args.job_id), job_summary, args, console)


async def cmd_attach(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    ref = _json_object(args.vendor_ref, "the vendor_ref", example=', e.g. \'{"task_id": "..."}\'')
    job = await client.attach(args.provider, ref, webhook_url=args.webhook_url, metadata=_metadata(args.metadata))
    return _show(job, job_summary, args, console)


async def cmd_usage(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    report = await client.usage(since=args.since, until=args.until, group_by=args.group_by)
    return _show(report, usage_table, args, console)


async def cmd_providers(client: AsyncClient, args: argparse.Namespace, console: Console) -> int:
    providers = await client.providers()
    if args.json:
        _print_json({"providers": [p.model_dump(mode="json") for p in providers]})
    else:
        providers_table(console, providers)
    return EXIT_OK


COMMANDS = {
    "submit": cmd_submit,
    "status": cmd_status,
    "wait": cmd_wait,
    "result": cmd_result,
    "artifact": cmd_artifact,
    "list": cmd_list,
    "cancel": cmd_cancel,
    "attach": cmd_attach,
    "providers": cmd_providers,
    "usage": cmd_usage,
}
