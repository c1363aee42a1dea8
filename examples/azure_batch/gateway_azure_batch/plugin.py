"""The entry point `gateway_azure_batch.plugin` of the `gateway.providers` group (see pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.hookspecs import hookimpl
from gateway_azure_batch.client import AzureBatchProvider


@hookimpl
def register_providers(register: Callable[[object], None]) -> None:
    register(AzureBatchProvider())
