"""Input a provider must refuse before it sends anything to its vendor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.errors import InputError
from gateway.testing.harness import VendorHarness


async def refused_before_sending(
    harness: VendorHarness, call: Callable[[], Awaitable[Any]], loc: list[Any] | None = None
) -> InputError:
    """`call()` raises InputError (its first error at `loc`, when given) and the vendor has seen no request."""
    with pytest.raises(InputError) as info:
        await call()
    if loc is not None:
        assert info.value.errors[0]["loc"] == loc
    assert harness.requests() == 0, dict(harness.sim.stats)
    return info.value
