"""The application factory: configuration, the declared routes (each observed: `gateway.server.middleware`), and
one cleanup context per resource (store, vendor HTTP session, webhook dispatcher, watcher), each released if a
later one fails."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.budgets import Budgets
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import ConfigError, GatewayConfig
from gateway.idempotency import KeyReservations
from gateway.jobs import Gateway
from gateway.metrics import Metrics, _labels
from gateway.plugins import get_providers
from gateway.provider import ProviderConfig
from gateway.refs import RefSealer
from gateway.routing import Router
from gateway.server.cluster import cluster_ctx
from gateway.server.keys import (
    CONFIG,
    CONNECTIONS,
    DISPATCHER,
    GATEWAY,
    HTTP,
    JOB_COUNTS,
    KEY_TABLE,
    LIMITS,
    METRICS,
    OPENAPI,
    OPERATOR_KEYS,
    PERMISSIONS,
    PROVIDER_SETTINGS,
    PROVIDERS,
    STORE,
    TENANT_CACHE,
    WATCHER,
    WEBHOOK_GUARD,
    WEBHOOK_SETTINGS,
)
from gateway.server.middleware import observe_unmatched
from gateway.server.openapi import openapi_document
from gateway.server.protocol import GatewayRunner
from gateway.server.routes import APIS, operations
from gateway.shadows import ShadowSampler
from gateway.store import open_store
from gateway.watch.engine import Watcher
from gateway.watch.lanes import Lane
from gateway.watch.notifier import Notifier
from gateway.webhooks.dispatcher import WebhookDispatcher
from gateway.webhooks.ssrf import AnyResolver, NetworkPolicy, UrlGuard

log = logging.getLogger("gateway.server")


def limits_of(config: GatewayConfig) -> dict[str, float]:
    """The configured bounds the declared parameters and request bodies refer to by name."""
    server = config.server
    return {
        "max_page": server.max_page,
        "max_body_bytes": server.max_body_bytes,
        "max_json_depth": server.max_json_depth,
        "max_metadata_bytes": server.max_metadata_bytes,
        "max_metadata_depth": server.max_metadata_depth,
        "max_metadata_keys": server.max_metadata_keys,
    }


def ref_sealer(config: GatewayConfig, settings: dict[str, ProviderConfig]) -> RefSealer:
    """The sealer of private vendor_ref fields, with the store key from the environment (ConfigError when the
    variable holds something that is not a Fernet key); a warning when a provider has private fields to keep
    and no key encrypts them."""
    env = config.store.secret_key_env
    try:
        refs = RefSealer.from_env(env)
    except ValueError as exc:
        raise ConfigError(f"store.secret_key_env: ${env}: {exc}") from None
    installed = get_providers()
    private = sorted(name for name in settings if installed[name].private_ref_fields)
    if private and not refs.encrypts:
        log.warning(
            "providers %s keep per-job vendor secrets; they are stored unencrypted (never shown) because no "
            "store key is configured: set [store] secret_key_env to encrypt them at rest",
            ", ".join(private),
        )
    return refs


def create_app(
    config: GatewayConfig,
    settings: dict[str, ProviderConfig],
    *,
    state_dir: Path,
    store_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    resolver: AnyResolver | None = None,
) -> web.Application:
    """A gateway application; its store, vendor sessions, webhook dispatcher and watcher live while the app runs.

    `clock` drives the watcher and the webhook schedule; `resolver` resolves webhook host names (at submit and at
    connect time; default: the system's)."""
    metrics = Metrics()
    refs = ref_sealer(config, settings)
    app = web.Application(client_max_size=config.server.max_body_bytes)
    app[CONFIG] = config
    app[PROVIDER_SETTINGS] = settings
    app[METRICS] = metrics
    app[KEY_TABLE] = config.key_table()
    app[TENANT_CACHE] = {}
    app[OPERATOR_KEYS] = config.operator_key_table()
    app[PERMISSIONS] = {name: t.permissions() for name, t in config.tenants.items()}
    app[LIMITS] = limits_of(config)
    app[WEBHOOK_SETTINGS] = config.webhooks
    app[WEBHOOK_GUARD] = UrlGuard(NetworkPolicy(config.webhooks.allow_networks), resolver)
    app[JOB_COUNTS] = {}
    metrics.gauge(
        "gateway_jobs",
        "Jobs by canonical state.",
        lambda: {_labels({"state": s}): float(n) for s, n in app[JOB_COUNTS].items()},
    )
    for api in APIS:
        api.register(app)  # each route observed (request id, tenant, problems, metric, access log)
    observe_unmatched(app)
    app[OPENAPI] = openapi_document(operations(), app[LIMITS])

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        store = open_store(store_url or config.store.url, state_dir=state_dir)
        await store.open()
        app[STORE] = store
        try:
            yield
        finally:
            await store.close()

    async def watcher_ctx(app: web.Application) -> AsyncIterator[None]:
        lanes = {name: Lane(s.poll, clock) for name, s in settings.items()}
        router = Router(app[STORE], app[PROVIDERS], app[CONNECTIONS], config.routes, metrics, refs, clock)
        watcher = Watcher(
            app[STORE],
            app[PROVIDERS],
            app[CONNECTIONS],
            lanes,
            metrics,
            Notifier(),
            on_event=app[DISPATCHER].wake,
            clock=clock,
            refs=refs,
            router=router,
        )
        app[WATCHER] = watcher
        shadows = ShadowSampler(config.routes, app[PROVIDERS])
        app[GATEWAY] = Gateway(
            store=app[STORE],
            providers=app[PROVIDERS],
            connections=app[CONNECTIONS],
            watcher=watcher,
            metrics=metrics,
            router=router,
            budgets=Budgets(app[STORE], {t: c.budget for t, c in config.tenants.items() if c.budget is not None}),
            shadows=shadows,
            reservations=KeyReservations(
                app[STORE],
                clock,
                wait_s=config.server.idempotency_wait_s,
                lease_s=config.server.idempotency_lease_s,
            ),
        )
        try:
            await watcher.start()
            yield
        finally:
            await shadows.close()
            await watcher.stop()

    async def dispatcher_ctx(app: web.Application) -> AsyncIterator[None]:
        """Webhook delivery from the store's outbox; resumes every undelivered event at start."""
        table = {name: t.webhook_secrets() for name, t in config.tenants.items()}

        def secrets_for(tenant: str, now: datetime) -> list[str]:
            secrets = table.get(tenant)
            return [] if secrets is None else secrets.signing(now)

        dispatcher = WebhookDispatcher(
            app[STORE], secrets_for, config.webhooks, metrics, resolver=app[WEBHOOK_GUARD].resolver, clock=clock
        )
        app[DISPATCHER] = dispatcher
        try:
            await dispatcher.start()
            yield
        finally:
            await dispatcher.stop()

    app.cleanup_ctx.extend([store_ctx, _http_ctx, dispatcher_ctx, watcher_ctx, cluster_ctx(clock)])
    app.on_shutdown.append(_end_streams)
    return app


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    """The one client session to the vendors, and each configured provider's connection over it."""
    session = aiohttp.ClientSession(raise_for_status=False)
    installed = get_providers()
    settings = app[PROVIDER_SETTINGS]
    app[HTTP] = session
    app[PROVIDERS] = {name: installed[name] for name in settings}
    app[CONNECTIONS] = {name: installed[name].connect(session, s) for name, s in settings.items()}
    try:
        yield
    finally:
        await session.close()


async def _end_streams(app: web.Application) -> None:
    """On shutdown, end every SSE stream and long poll now rather than after their timeouts."""
    if WATCHER in app:
        app[WATCHER].notifier.close()


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `app`; when its startup fails half-way, the resources already made are released."""
    runner = GatewayRunner(app, access_log=None)
    try:
        await runner.setup()
    except BaseException:
        await app.cleanup()  # the runner only cleans up an app whose startup finished
        raise
    await web.TCPSite(runner, host, port).start()
    return runner
