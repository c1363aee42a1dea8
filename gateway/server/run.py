"""`gateway serve`: the server from a config file, or the demo with in-process simulators."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.config import ConfigError, GatewayConfig, load_config, merged, parse_config, read_toml
from gateway.config_check import findings
from gateway.plugins import get_providers
from gateway.provider import ProviderConfig
from gateway.server import logs
from gateway.server.app import create_app, start
from gateway.sim.server import build_simulator_app

log = logging.getLogger("gateway.config")

DEMO_VENDOR_KEY_ENV = "GATEWAY_DEMO_VENDOR_KEY"
#: the demo polls a little faster than the production defaults, so simulated jobs move visibly
DEMO_POLL = {"initial_s": 0.5, "factor": 2.0, "max_s": 5.0}
DEMO_OPERATOR_KEY = "demo-operator-key"
#: the demo tenants' webhook secrets, in the Standard Webhooks form (base64 of 32 readable bytes)
DEMO_WEBHOOK_SECRET = "whsec_ZGVtby13ZWJob29rLXNlY3JldC1vZi10ZW5hbnQtYSE="
DEMO_WEBHOOK_SECRET_B = "whsec_ZGVtby13ZWJob29rLXNlY3JldC1vZi10ZW5hbnQtYiE="
#: the demo tenants may attach vendor jobs (the demo's simulators hold nothing but demo jobs)
DEMO_TENANTS: dict[str, dict[str, Any]] = {
    "demo": {"keys": ["demo-key"], "webhook_secret": DEMO_WEBHOOK_SECRET, "may_attach": True},
    "demo-b": {"keys": ["demo-key-b"], "webhook_secret": DEMO_WEBHOOK_SECRET_B, "may_attach": True},
}
#: the demo delivers webhooks to loopback receivers, and nowhere else that is not public
DEMO_WEBHOOK_NETWORKS = ("127.0.0.0/8", "::1/128")
#: the demo retries webhooks on a compressed schedule (about 7 minutes), so a failing receiver is quick to watch
DEMO_RETRY_SCHEDULE_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def demo_config(sim_url: str, *, poll: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo's config: every installed provider whose `demo_settings()` says so, pointed at its simulator
    with the vendor key from GATEWAY_DEMO_VENDOR_KEY; the routes the providers put themselves on; two
    tenants; loopback webhooks. No provider is named here: a plugin with a simulator joins as it is."""
    os.environ.setdefault(DEMO_VENDOR_KEY_ENV, "demo-vendor-key")
    providers: dict[str, Any] = {}
    places: dict[str, list[tuple[int, str]]] = {}
    for name, provider in sorted(get_providers().items()):
        demo = provider.demo_settings()
        if demo is None or not provider.sim_prefix:
            continue
        providers[name] = {
            **demo.config,
            "base_url": sim_url.rstrip("/") + provider.sim_prefix,
            "api_key_env": DEMO_VENDOR_KEY_ENV,
            "poll": poll or DEMO_POLL,
        }
        for route, place in demo.routes.items():
            places.setdefault(route, []).append((place, name))
    return {
        "tenants": DEMO_TENANTS,
        "operator": {"keys": [DEMO_OPERATOR_KEY]},
        "providers": providers,
        "routes": {route: {"providers": [name for _, name in sorted(found)]} for route, found in places.items()},
        "webhooks": {"allow_networks": list(DEMO_WEBHOOK_NETWORKS), "retry_schedule_s": list(DEMO_RETRY_SCHEDULE_S)},
    }


async def _run(args: argparse.Namespace) -> int:
    runners: list[web.AppRunner] = []
    state_dir: Path
    if args.demo:
        sim_url = args.sim_url
        if not sim_url:
            sim_runner = web.AppRunner(build_simulator_app(step_s=args.step), access_log=None)
            await sim_runner.setup()
            site = web.TCPSite(sim_runner, "127.0.0.1", args.sim_port)
            await site.start()
            runners.append(sim_runner)
            port = sim_runner.addresses[0][1]
            sim_url = f"http://127.0.0.1:{port}"
        data = demo_config(sim_url)
        if args.config:  # laid over the demo's own configuration, e.g. to change a route
            data = merged(data, read_toml(args.config))
        config, settings = parse_config(data, source=f"--demo --config {args.config}" if args.config else "--demo")
        state_dir = Path(tempfile.mkdtemp(prefix="gateway-demo-"))
    else:
        if not args.config:
            print("gateway serve: give --config FILE, or --demo", file=sys.stderr)
            return 2
        config, settings = load_config(args.config)
        state_dir = Path(config.store.state_dir)
        sim_url = None
    host = args.host or config.server.host
    port = args.port if args.port is not None else config.server.port
    try:
        runner = await start(create_app(config, settings, state_dir=state_dir, store_url=args.store), host, port)
    except BaseException:
        for r in reversed(runners):
            await r.cleanup()
        raise
    runners.append(runner)
    gc.freeze()  # what start-up made (modules, schemas, config) lives for good: the collector need not walk it
    bound = runner.addresses[0][1]
    _announce(config, settings, host, bound, sim_url, state_dir, args.demo)
    for finding in findings(config, settings):
        log.warning("%s", finding)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for r in reversed(runners):
        await r.cleanup()
    return 0


def _announce(
    config: GatewayConfig,
    settings: dict[str, ProviderConfig],
    host: str,
    port: int,
    sim_url: str | None,
    state_dir: Path,
    demo: bool,
) -> None:
    base = f"http://{host}:{port}"
    print(f"gateway listening on {base}  (OpenAPI: {base}/openapi.json)", flush=True)
    print(f"store: {state_dir}", flush=True)
    print(f"providers: {', '.join(sorted(settings))}", flush=True)
    for route, members in sorted(config.routes.items()):
        print(f"route {route}: {' -> '.join(members.providers)}", flush=True)
    print(f"dashboard: {base}/ui", flush=True)
    if demo:
        print(f"simulators: {sim_url} (vendor key for every provider: ${DEMO_VENDOR_KEY_ENV})", flush=True)
        for tenant, spec in DEMO_TENANTS.items():
            print(f"tenant {tenant}: key {spec['keys'][0]}, webhook secret {spec['webhook_secret']}", flush=True)
        print(f"operator key (dashboard): {DEMO_OPERATOR_KEY}", flush=True)
        print(f"try: curl -H 'Authorization: Bearer demo-key' {base}/v1/providers", flush=True)


async def _run_logged(args: argparse.Namespace, handler: logs.BufferedStreamHandler) -> int:
    async with logs.flushing(handler):
        return await _run(args)


def serve(args: argparse.Namespace) -> int:
    handler = logs.configure(logging.INFO)
    if args.store and "://" not in args.store:
        args.store = os.path.abspath(args.store)  # a bare path means one relative to where the command runs
    try:
        return asyncio.run(_run_logged(args, handler))
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    finally:
        handler.flush_now()
