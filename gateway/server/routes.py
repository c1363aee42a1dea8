"""Every declared HTTP operation of the gateway (contract section 2), module by module."""

from __future__ import annotations

from gateway.server import (
    routes_deliveries,
    routes_events,
    routes_history,
    routes_jobs,
    routes_operator,
    routes_ops,
    routes_results,
    routes_ui,
    routes_usage,
)
from gateway.server.api import Api, Operation

APIS: tuple[Api, ...] = (
    routes_jobs.api,
    routes_history.api,
    routes_results.api,
    routes_usage.api,
    routes_deliveries.api,
    routes_events.api,
    routes_ops.api,
    routes_operator.api,
    routes_ui.api,
)


def operations() -> list[Operation]:
    return [op for api in APIS for op in api.operations]
