"""The one plugin manager, and load-once discovery of providers through the `gateway.providers` entry points."""

from __future__ import annotations

import os
import sys
from importlib.metadata import entry_points

import pluggy

from gateway import hookspecs
from gateway.provider import Provider

ENTRY_POINT_GROUP = "gateway.providers"
#: the gateway's own distribution (see pyproject.toml)
DIST = "translation-gateway"
#: comma-separated entry-point names to load; unset loads all, empty loads none (like LLM_LOAD_PLUGINS)
LOAD_ENV = "GATEWAY_LOAD_PLUGINS"

pm = pluggy.PluginManager(hookspecs.PROJECT)
pm.add_hookspecs(hookspecs)

_loaded = False


def load_plugins() -> None:
    """Load the entry-point plugins once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get(LOAD_ENV)
    if wanted is None:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        return
    names = {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in names and not pm.has_plugin(ep.name):
            pm.register(ep.load(), name=ep.name)
            names.discard(ep.name)
    for missing in sorted(names):
        print(f"gateway: plugin {missing!r} named in {LOAD_ENV} is not installed", file=sys.stderr)


def get_providers() -> dict[str, Provider]:
    """Every registered provider by name; a later registration of the same name is refused."""
    load_plugins()
    found: dict[str, Provider] = {}

    def register(provider: object) -> None:
        if not isinstance(provider, Provider):
            raise TypeError(f"register_providers got {provider!r}, which is not a gateway.provider.Provider")
        if provider.name in found:
            raise ValueError(f"two plugins register a provider named {provider.name!r}")
        found[provider.name] = provider

    pm.hook.register_providers(register=register)
    return found


def builtin_providers() -> dict[str, Provider]:
    """The providers this distribution ships (its own entry points), without any third-party plugin installed
    beside them: what the gateway's own documents describe, whatever else the environment holds."""
    own = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist is not None and ep.dist.name == DIST}
    return {name: provider for name, provider in get_providers().items() if name in own}


def get_provider(name: str) -> Provider:
    """The installed provider of this name; LookupError when there is none."""
    providers = get_providers()
    try:
        return providers[name]
    except KeyError:
        raise LookupError(f"no provider named {name!r} is installed (have: {', '.join(sorted(providers))})") from None
