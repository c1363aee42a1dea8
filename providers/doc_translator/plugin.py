"""Entry point `providers.doc_translator.plugin` of the `gateway.providers` group."""

from __future__ import annotations

from collections.abc import Callable

from gateway.hookspecs import hookimpl
from providers.doc_translator.client import DocTranslatorProvider


@hookimpl
def register_providers(register: Callable[[object], None]) -> None:
    register(DocTranslatorProvider())
