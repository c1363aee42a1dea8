"""Entry point `providers.datafold.plugin` of the `gateway.providers` group."""

from __future__ import annotations

from collections.abc import Callable

from gateway.hookspecs import hookimpl
from providers.datafold.client import DatafoldProvider


@hookimpl
def register_providers(register: Callable[[object], None]) -> None:
    register(DatafoldProvider())
