"""The `gateway` command line: serve, simulate, check, the installed providers, and the client commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from aiohttp import web

from gateway import __version__
from gateway.client_cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, add_client_options, run_client
from gateway.config import ConfigError, load_config
from gateway.config_check import findings, needed
from gateway.docs_gen import mapping_markdown, with_section
from gateway.plugins import builtin_providers, get_providers
from gateway.server.run import serve
from gateway.sim.server import SIMULATORS, build_simulator_app

CLIENT_HELP = " (reads GATEWAY_URL and GATEWAY_KEY)"
EXIT_CODES = """exit codes: 0 succeeded (or done), 1 the gateway answered an error or was not reached, 2 usage,
3 completed_with_issues, 4 failed, 5 cancelled, 6 gave up waiting (--timeout)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="One API for many asynchronous translation vendors.")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str, *, client: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=help_text + (CLIENT_HELP if client else ""),
            epilog=EXIT_CODES if client else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("--version", action="version", version=f"gateway {__version__}")
        if client:
            add_client_options(p)
        return p

    serve = command("serve", "run the gateway HTTP server")
    serve.add_argument("--config", help="TOML config file (see config.example.toml); with --demo, laid over the demo's")
    serve.add_argument("--demo", action="store_true", help="in-process simulators, demo tenants, embedded store")
    serve.add_argument("--host", help="listen address (default from config, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config, else 8080; 0: any free port)")
    serve.add_argument("--sim-port", type=int, default=0, help="--demo: port of the in-process simulators (0: any)")
    serve.add_argument("--sim-url", help="--demo: use an already running `gateway simulate` at this URL")
    serve.add_argument("--store", help="store URL (default: an embedded SQLite file in the state directory)")
    serve.add_argument("--step", type=float, default=1.0, help="--demo: simulator step duration in seconds")

    check = command("check", "validate a configuration and report every unset variable it names, without starting")
    check.add_argument("--config", required=True, help="the TOML config file to check")

    simulate = command("simulate", "serve every vendor simulator from one process")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8090, help="0: any free port (the bound one is printed)")
    simulate.add_argument("--step", type=float, default=1.0, help="seconds between simulated status steps")

    providers = command("providers", "the installed providers and their status mapping (or, --remote, the gateway's)")
    add_client_options(providers)
    providers.add_argument("--remote", action="store_true", help="the providers the gateway at --url offers")
    providers.add_argument("--installed", action="store_true", help="the providers installed here (the default)")
    providers.add_argument("--markdown", action="store_true", help="the mapping tables as Markdown (README)")

    submit = command("submit", "submit a job", client=True)
    submit.add_argument(
        "items", nargs="*", metavar="[PROVIDER] TEXT... | FILE", help="the provider, then texts or a file"
    )
    submit.add_argument("--from", dest="source", metavar="LANG", help="source language (BCP-47, e.g. en-us)")
    submit.add_argument("--to", dest="target", metavar="LANG", help="target language (BCP-47, e.g. de-de)")
    submit.add_argument("--provider", help="the provider (instead of the first argument)")
    submit.add_argument("--route", help="a configured route instead of a provider")
    submit.add_argument("--input", help="the whole input as JSON, or @file.json (canonical or the vendor's own)")
    submit.add_argument("--text", action="store_true", help="treat every argument as text, even a file name")
    submit.add_argument("--webhook-url")
    submit.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    submit.add_argument("--idempotency-key", help="default: a fresh one (submits are retried safely with it)")
    submit.add_argument("--wait", action="store_true", help="then follow the job until it ends")
    submit.add_argument("--timeout", type=float, default=3600.0, help="--wait: give up after this many seconds")

    for name, text in (
        ("status", "show a job"),
        ("wait", "follow a job until it ends, with a live display"),
        ("result", "show a finished job's result, each output beside its source"),
        ("artifact", "save a finished job's output file"),
        ("cancel", "cancel a job"),
    ):
        p = command(name, text, client=True)
        p.add_argument("job_id")
        if name == "wait":
            p.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
        if name == "artifact":
            p.add_argument("-o", "--output", help="file or directory (default: the server's file name, here)")

    listing = command("list", "list your jobs, newest first", client=True)
    listing.add_argument("--state")
    listing.add_argument("--provider")
    listing.add_argument("--limit", type=int, help="jobs per page (the gateway's default: 50)")
    listing.add_argument("--all", action="store_true", help="every page, not just the first")

    usage = command("usage", "what each vendor cost, how your jobs ended and how long they took", client=True)
    usage.add_argument(
        "--from", dest="since", metavar="WHEN", help="a UTC day (YYYY-MM-DD) or date-time (default: 30 days ago)"
    )
    usage.add_argument("--to", dest="until", metavar="WHEN", help="the end, excluded (default: now)")
    usage.add_argument("--group-by", choices=("provider", "route", "day"), default="provider")

    attach = command("attach", "adopt a job started at the vendor directly", client=True)
    attach.add_argument("provider")
    attach.add_argument("vendor_ref", help='the vendor\'s job reference as JSON (e.g. \'{"task_id": "..."}\') or @file')
    attach.add_argument("--webhook-url")
    attach.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    # `submit camb --from en --to de "Hello" "World"`: texts may follow the options
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "submit" and not any(e.startswith("--") for e in extra):
        args.items.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = {"serve": serve, "simulate": _simulate, "check": _check}.get(args.command, _client)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _client(args: argparse.Namespace) -> int:
    if args.command == "providers" and not args.remote:
        return _installed(args)
    if args.command == "providers" and (args.markdown or args.installed):
        print(
            "gateway providers: --remote lists the gateway's providers; --markdown and --installed are local",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return asyncio.run(run_client(args))


def _installed(args: argparse.Namespace) -> int:
    providers = get_providers()
    if args.markdown:
        print(mapping_markdown(providers))
        return EXIT_OK
    if args.json:
        print(json.dumps({"providers": [p.describe() for _, p in sorted(providers.items())]}, indent=2))
        return EXIT_OK
    for name, provider in sorted(providers.items()):
        caps = provider.capabilities
        flags = [k for k in ("submit", "status", "result", "cancel", "artifact", "progress") if getattr(caps, k)]
        print(f"{name}  ({provider.display_name})")
        print(f"  capabilities: {', '.join(flags)}; inputs: {', '.join(caps.input_kinds)}")
        width = max((len(s) for s in provider.mapping), default=0)
        for status, state in provider.mapping.items():
            note = provider.mapping_notes.get(status)
            print(f"  {status:<{width}} -> {state}" + (f"  ({note})" if note else ""))
        print()
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    """Like `nginx -t`: validate, report what is missing, exit 1 when something needed is, 2 when invalid."""
    try:
        config, settings = load_config(args.config)
    except ConfigError as exc:
        print(f"gateway check: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"{args.config}: valid ({len(settings)} providers, {len(config.tenants)} tenants, {len(config.routes)} routes)"
    )
    found = findings(config, settings)
    for finding in found:
        print(finding)
    missing = needed(found)
    if missing:
        print(f"{args.config}: {len(missing)} needed setting(s) missing, {len(found) - len(missing)} warning(s)")
        return EXIT_ERROR
    print(f"{args.config}: ready" + (f" ({len(found)} warning(s))" if found else ""))
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    return asyncio.run(_run_simulators(args))


async def _run_simulators(args: argparse.Namespace) -> int:
    app = build_simulator_app(step_s=args.step)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    port = runner.addresses[0][1]
    providers = get_providers()
    print(f"simulators listening on http://{args.host}:{port}", flush=True)
    for name in app[SIMULATORS]:
        print(f"{name:<16} http://{args.host}:{port}{providers[name].sim_prefix}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    return EXIT_OK


def write_readme_sections(readme: Path) -> bool:
    """Rewrite the README's generated sections from the code; True when anything changed (`make docs`)."""
    text = readme.read_text(encoding="utf-8")
    updated = with_section(text, "mapping", mapping_markdown(builtin_providers()))
    if updated != text:
        readme.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    sys.exit(main())
