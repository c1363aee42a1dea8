"""Shadow runs (contract section 4.4): a route may copy a sampled fraction of its submits to a `shadow` provider,
to compare vendors on real traffic before switching.

The shadow job is a job of the same tenant, linked both ways (`shadow` on the primary, `shadow_of` on the copy),
with no webhook and no fail-over. It is submitted in the background after the primary's submit has been answered,
so the primary never waits for it, and nothing that happens to it (a refused submit, a failure, a slow vendor)
touches the primary. Its usage and duration are in the ledger under the shadow provider (`shadow: true`).

Sampling draws from a random generator per route, seeded by `shadow_seed` when configured: the same seed gives
the same draws (the n-th submit of the route is sampled or not, whatever the timing)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config import RouteConfig
from gateway.errors import InputError
from gateway.inputs import check_kind
from gateway.provider import Provider

log = logging.getLogger("gateway.shadows")


@dataclass
class ShadowSampler:
    """Decides which of a route's submits get a shadow run, and keeps the shadow runs' background tasks."""

    routes: dict[str, RouteConfig]
    providers: dict[str, Provider]
    _draws: dict[str, random.Random] = field(default_factory=dict, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    def sampled(self, route: str | None, input: dict[str, Any]) -> str | None:
        """The shadow provider when this submit of `route` is sampled for a shadow run, else None (no shadow,
        not drawn, or the shadow provider does not take this kind of input)."""
        spec = self.routes.get(route) if route is not None else None
        if spec is None or spec.shadow is None or spec.shadow not in self.providers:
            return None
        draws = self._draws.get(route or "")
        if draws is None:
            draws = self._draws[route or ""] = random.Random(spec.shadow_seed)
        if draws.random() >= spec.shadow_sample:
            return None
        try:
            check_kind(input, self.providers[spec.shadow].capabilities.input_kinds, loc=("body", "input"))
        except InputError:
            return None
        return spec.shadow

    def start(self, run: Callable[[], Awaitable[None]], name: str) -> None:
        """Run a shadow submit in the background (its failure is logged, never raised to anyone)."""

        async def guarded() -> None:
            try:
                await run()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shadow run %s failed", name)

        task = asyncio.create_task(guarded(), name=f"shadow-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        """Wait until every shadow submit started so far has ended (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
