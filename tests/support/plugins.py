"""Throwaway provider plugins, registered with the gateway's plugin manager for a block of a test, and a base
for throwaway providers of a tiny test vendor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.hookspecs import hookimpl
from gateway.plugins import pm
from gateway.provider import Provider
from gateway.vendor_http import VendorConnection, path_segment


class ThrowawayPlugin:
    """A plugin whose `register_providers` registers the given objects (providers, or anything, to test refusals)."""

    def __init__(self, *providers: Any) -> None:
        self.providers = providers

    @hookimpl
    def register_providers(self, register: Any) -> None:
        for provider in self.providers:
            register(provider)


@contextmanager
def registered(*providers: Any, name: str) -> Iterator[ThrowawayPlugin]:
    """A plugin registering `providers` under the plugin name `name` while the block runs."""
    plugin = ThrowawayPlugin(*providers)
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        if pm.has_plugin(name):
            pm.unregister(name=name)


class TinyVendorProvider(Provider):
    """A throwaway provider of a tiny test vendor: `POST /jobs` creates a job and answers `{"id"}`, `GET /jobs/{id}`
    answers `{"status"}` (mapped by `mapping` alone), `POST /jobs/{id}/cancel` cancels it. Subclasses set the
    name, capabilities and mapping."""

    async def submit(self, conn: VendorConnection, input: Any) -> dict[str, Any]:
        _, body = await conn.request_json("POST", "/jobs", json_body=input)
        return {"id": body["id"]}

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        return (await conn.request_json("GET", f"/jobs/{path_segment(ref['id'])}"))[1]

    async def cancel(self, conn: VendorConnection, ref: dict[str, Any]) -> None:
        await conn.request_json("POST", f"/jobs/{path_segment(ref['id'])}/cancel")
