"""Each built-in provider's conformance case (see gateway/testing/case.py), one module per provider."""

from __future__ import annotations

import importlib

from gateway.testing.case import ConformanceCase


def load_case(name: str) -> ConformanceCase:
    """The conformance case of the provider `name` (a module of this package)."""
    return importlib.import_module(f"{__name__}.{name}").CASE
