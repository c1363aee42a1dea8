"""The plugin hooks. Pluggy is synchronous: hooks only register provider objects, whose methods are async."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "gateway"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_providers(register: Callable[[object], None]) -> None:
    """Register provider objects by calling `register(provider)` once for each."""
