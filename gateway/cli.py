"""The `gateway` command line: serve, simulate, providers, and the client commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from aiohttp import web

from gateway import __version__
from gateway.client_cli import run_client
from gateway.plugins import get_providers
from gateway.server.run import serve
from gateway.sim.server import SIMULATORS, build_simulator_app


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="One API for many asynchronous translation vendors.")
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--version", action="version", version=f"gateway {__version__}")
        return p

    serve = command("serve", "run the gateway HTTP server")
    serve.add_argument("--config", help="TOML config file (see config.example.toml)")
    serve.add_argument("--demo", action="store_true", help="in-process simulators, demo tenants, embedded store")
    serve.add_argument("--host", help="listen address (default from config, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default from config, else 8080)")
    serve.add_argument("--sim-port", type=int, default=0, help="--demo: port of the in-process simulators (0: any)")
    serve.add_argument("--sim-url", help="--demo: use an already running `gateway simulate` at this URL")
    serve.add_argument("--store", help="store URL (default: an embedded SQLite file in the state directory)")
    serve.add_argument("--step", type=float, default=1.0, help="--demo: simulator step duration in seconds")

    simulate = command("simulate", "serve every vendor simulator from one process")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8090)
    simulate.add_argument("--step", type=float, default=1.0, help="seconds between simulated status steps")

    providers = command("providers", "list installed providers and their status mapping")
    providers.add_argument("--json", action="store_true", help="machine-readable output")

    submit = command("submit", "submit a job (reads GATEWAY_URL and GATEWAY_KEY)")
    target = submit.add_mutually_exclusive_group(required=True)
    target.add_argument("--provider")
    target.add_argument("--route")
    submit.add_argument("--input", required=True, help="the input as JSON, or @file.json")
    submit.add_argument("--webhook-url")
    submit.add_argument("--idempotency-key")

    for name, text in (
        ("status", "show a job's status"),
        ("wait", "follow a job until it is terminal, with live progress"),
        ("result", "print a finished job's result"),
    ):
        p = command(name, text + " (reads GATEWAY_URL and GATEWAY_KEY)")
        p.add_argument("job_id")
        if name == "wait":
            p.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "serve": _serve,
        "simulate": _simulate,
        "providers": _providers,
        "submit": _client,
        "status": _client,
        "wait": _client,
        "result": _client,
    }[args.command]
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


def _providers(args: argparse.Namespace) -> int:
    providers = get_providers()
    if args.json:
        print(json.dumps({"providers": [p.describe() for _, p in sorted(providers.items())]}, indent=2))
        return 0
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
    return 0


def _simulate(args: argparse.Namespace) -> int:
    app = build_simulator_app(step_s=args.step)
    providers = get_providers()
    for name in app[SIMULATORS]:
        print(f"{name:<16} http://{args.host}:{args.port}{providers[name].sim_prefix}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=lambda *_: None)
    return 0


def _serve(args: argparse.Namespace) -> int:
    return serve(args)


def _client(args: argparse.Namespace) -> int:
    url = os.environ.get("GATEWAY_URL")
    key = os.environ.get("GATEWAY_KEY")
    if not url or not key:
        print("gateway: set GATEWAY_URL and GATEWAY_KEY (e.g. http://127.0.0.1:8080 and demo-key)", file=sys.stderr)
        return 2
    return asyncio.run(run_client(args, url.rstrip("/"), key))


if __name__ == "__main__":
    sys.exit(main())
