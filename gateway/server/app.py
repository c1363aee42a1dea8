"""The application factory: routes, middlewares, and the resources built and released by cleanup_ctx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import GatewayConfig
from gateway.jobs import Gateway
from gateway.metrics import Metrics, _labels
from gateway.plugins import get_providers
from gateway.provider import ProviderConfig
from gateway.server.middleware import KEY_TABLE, METRICS, authenticate, observe
from gateway.server.openapi import openapi_document
from gateway.server.routes import GATEWAY, JOB_COUNTS, MAX_BODY, MAX_PAGE, STORE, WEBHOOK_SETTINGS, routes
from gateway.store.base import open_store
from gateway.watch.engine import Watcher
from gateway.watch.lanes import Lane
from gateway.watch.notifier import Notifier
from gateway.webhooks.dispatcher import WebhookDispatcher

OPENAPI = web.AppKey("openapi", dict)


def create_app(
    config: GatewayConfig,
    settings: dict[str, ProviderConfig],
    *,
    state_dir: Path,
    store_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> web.Application:
    """A gateway application; its store, vendor sessions and watcher live while the app runs."""
    metrics = Metrics()
    app = web.Application(
        middlewares=[observe, authenticate],
        client_max_size=config.server.max_body_bytes,
    )
    app[METRICS] = metrics
    app[KEY_TABLE] = config.key_table()
    app[MAX_BODY] = config.server.max_body_bytes
    app[MAX_PAGE] = config.server.max_page
    app[WEBHOOK_SETTINGS] = config.webhooks
    app[JOB_COUNTS] = {}
    metrics.gauge(
        "gateway_jobs",
        "Jobs by canonical state.",
        lambda: {_labels({"state": s}): float(n) for s, n in app[JOB_COUNTS].items()},
    )
    app.add_routes(routes)
    app[OPENAPI] = openapi_document()
    app.router.add_get("/openapi.json", _openapi)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(state_dir.mkdir, parents=True, exist_ok=True)
        store = open_store(store_url or config.store.url, state_dir=state_dir)
        await store.open()
        session = aiohttp.ClientSession(raise_for_status=False)
        installed = get_providers()
        providers = {name: installed[name] for name in settings}
        connections = {name: providers[name].connect(session, s) for name, s in settings.items()}
        lanes = {name: Lane(s.poll, clock) for name, s in settings.items()}
        notifier = Notifier()
        secrets = {name: t.secret() for name, t in config.tenants.items()}
        dispatcher = WebhookDispatcher(store, secrets.get, config.webhooks, metrics)
        watcher = Watcher(
            store, providers, connections, lanes, metrics, notifier, on_event=dispatcher.wake, clock=clock
        )
        gateway = Gateway(
            store=store,
            providers=providers,
            connections=connections,
            routes={name: r.providers for name, r in config.routes.items()},
            watcher=watcher,
            metrics=metrics,
        )
        watcher.webhook_payload = gateway.webhook_payload
        app[STORE] = store
        app[GATEWAY] = gateway
        await watcher.start()
        await dispatcher.start()  # resumes every undelivered event from the store's outbox
        try:
            yield
        finally:
            await dispatcher.stop()
            await watcher.stop()
            await session.close()
            await store.close()

    app.cleanup_ctx.append(resources)
    app.on_shutdown.append(_end_streams)
    return app


async def _end_streams(app: web.Application) -> None:
    """On shutdown, end every SSE stream and long poll now rather than after their timeouts."""
    if GATEWAY in app:
        app[GATEWAY].watcher.notifier.close()


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
