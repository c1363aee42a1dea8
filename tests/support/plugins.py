"""Throwaway provider plugins, registered with the gateway's plugin manager for a block of a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gateway.hookspecs import hookimpl
from gateway.plugins import pm


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
