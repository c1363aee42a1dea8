"""The typed keys of the application's and the requests' shared state."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from gateway.config import GatewayConfig, WebhookConfig
from gateway.jobs import Gateway
from gateway.metrics import Metrics
from gateway.provider import Provider, ProviderConfig
from gateway.store.base import Store
from gateway.vendor_http import VendorConnection
from gateway.watch.engine import Watcher
from gateway.watch.leases import LeaseKeeper
from gateway.webhooks.dispatcher import WebhookDispatcher
from gateway.webhooks.ssrf import UrlGuard

# -- configuration, set by the app factory ------------------------------------------------------------
CONFIG = web.AppKey("config", GatewayConfig)
PROVIDER_SETTINGS = web.AppKey("provider_settings", dict[str, ProviderConfig])
#: configured bounds of request parameters by name (e.g. "max_page"), read by the router and the OpenAPI document
LIMITS = web.AppKey("limits", dict[str, float])
KEY_TABLE = web.AppKey("key_table", list[tuple[bytes, str]])
#: Authorization header values that named a tenant (KEY_TABLE) -> that tenant: the authentication of a repeated
#: header is one dict lookup (filled and bounded by `gateway.server.auth`)
TENANT_CACHE = web.AppKey("tenant_cache", dict[str, str])
#: what each tenant is allowed beyond its own jobs (e.g. "attach"), from the configuration
PERMISSIONS = web.AppKey("permissions", dict[str, frozenset[str]])
#: the operator keys' digests (the dashboard and /v1/operator); empty: both closed
OPERATOR_KEYS = web.AppKey("operator_keys", list[tuple[bytes, str]])
WEBHOOK_SETTINGS = web.AppKey("webhook_settings", WebhookConfig)
#: the SSRF check of webhook URLs at submit (the configured network rules, the app's resolver)
WEBHOOK_GUARD = web.AppKey("webhook_guard", UrlGuard)
METRICS = web.AppKey("metrics", Metrics)
OPENAPI = web.AppKey("openapi", dict[str, Any])
JOB_COUNTS = web.AppKey("job_counts", dict[str, int])
#: a quick route's answer from memory to a request, given its path parameters and the caller's tenant; None when
#: it cannot answer at once
QuickAnswer = Callable[[web.Request, dict[str, str], str], web.StreamResponse | None]
#: a quick route: makes its QuickAnswer once for the started app (whose state is then complete)
QuickRoute = Callable[[web.Application], QuickAnswer]
#: a quick route's answer observed (request id, tenant, metric, access line), given the path parameters
QuickServe = Callable[[web.Request, dict[str, str]], web.StreamResponse | None]
#: (raw path pattern, observed quick route) of the operations answered before routing (`gateway.server.quick`)
QUICK_ROUTES = web.AppKey("quick_routes", tuple[tuple[re.Pattern[str], Callable[[web.Application], QuickServe]], ...])

# -- resources, each made and released by its own cleanup context ------------------------------------------
STORE = web.AppKey("store", Store)
HTTP = web.AppKey("http", aiohttp.ClientSession)
PROVIDERS = web.AppKey("providers", dict[str, Provider])
CONNECTIONS = web.AppKey("connections", dict[str, VendorConnection])
DISPATCHER = web.AppKey("dispatcher", WebhookDispatcher)
WATCHER = web.AppKey("watcher", Watcher)
GATEWAY = web.AppKey("gateway", Gateway)
#: the lease keeper of a replica on a shared store (absent on SQLite)
LEASES = web.AppKey("leases", LeaseKeeper)

# -- per request ------------------------------------------------------------------------------------------
TENANT = web.RequestKey("tenant", str)
REQUEST_ID = web.RequestKey("request_id", str)
