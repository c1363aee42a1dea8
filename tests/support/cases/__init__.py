"""Each built-in provider's conformance case (see gateway/testing/case.py), one module per provider; a third-party
plugin's own case (`gateway.testing.case.case_for`) for any other installed provider."""

from __future__ import annotations

import importlib

from gateway.plugins import get_provider
from gateway.testing.case import ConformanceCase, case_for


def load_case(name: str) -> ConformanceCase:
    """The conformance case of the provider `name`: a module of this package, else the one its plugin ships."""
    try:
        return importlib.import_module(f"{__name__}.{name}").CASE
    except ModuleNotFoundError:
        return case_for(get_provider(name))
