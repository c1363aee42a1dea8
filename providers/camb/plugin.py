"""Entry point `providers.camb.plugin` of the `gateway.providers` group."""

from __future__ import annotations

from collections.abc import Callable

from gateway.hookspecs import hookimpl
from providers.camb.client import CambProvider


@hookimpl
def register_providers(register: Callable[[object], None]) -> None:
    register(CambProvider())
