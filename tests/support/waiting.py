"""The one wait-until helper: for conditions that real I/O (HTTP on loopback, a subprocess) makes true.

Never use it to let time pass for a schedule (backoff, Retry-After, breaker): drive a FakeClock instead.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: how often the condition is checked (real seconds)
EVERY_S = 0.01


async def wait_until(predicate: Callable[[], T | Awaitable[T]], *, within: float = 10.0, what: str | None = None) -> T:
    """Check `predicate()` (a plain or async callable) until it returns something truthy; return that. After
    `within` real seconds fail, naming `what` (or the predicate) and the last value it returned."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: Any = None
    while True:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if loop.time() >= deadline:
            name = what or getattr(predicate, "__qualname__", repr(predicate))
            raise AssertionError(f"not true within {within:g} s: {name}; last value: {last!r}")
        await asyncio.sleep(EVERY_S)
