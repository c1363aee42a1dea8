"""Entry point `providers.segment_qa.plugin` of the `gateway.providers` group."""

from __future__ import annotations

from collections.abc import Callable

from gateway.hookspecs import hookimpl
from providers.segment_qa.client import SegmentQAProvider


@hookimpl
def register_providers(register: Callable[[object], None]) -> None:
    register(SegmentQAProvider())
