"""Per-provider pacing of vendor status requests: concurrency limit, request rate, circuit breaker, backoff."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.provider import PollSettings


class RateLimiter:
    """A token bucket: at most `rate` acquisitions per second, bursts of up to `rate` (at least one)."""

    def __init__(self, rate: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.clock = clock
        self.updated = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self._lock.locked() and self._take():  # a token is there and nobody waits for one
            return
        async with self._lock:
            while True:
                if self._take():
                    return
                await self.clock.sleep((1 - self.tokens) / self.rate)

    def _take(self) -> bool:
        """Refill the bucket for the time passed; take a token when there is one."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class CircuitBreaker:
    """Opens after `threshold` consecutive failures; lets one trial request through after `reset_s`."""

    def __init__(self, threshold: int, reset_s: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.threshold = threshold
        self.reset_s = reset_s
        self.clock = clock
        self.failures = 0
        self.opened_at: float | None = None

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self.clock() - self.opened_at >= self.reset_s:
            self.opened_at = self.clock()  # half-open: one trial, the next failure re-opens it for reset_s
            return True
        return False

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def retry_in(self) -> float:
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.reset_s - (self.clock() - self.opened_at))

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()


@dataclass(frozen=True)
class VendorErrorSeen:
    at: datetime
    error: str
    message: str


class LaneHealth:
    """What an operator wants to know of one provider's polling: its recent vendor errors and how late the
    recent polls started after they were due."""

    def __init__(self, keep_errors: int = 20, keep_lags: int = 100) -> None:
        self.errors: deque[VendorErrorSeen] = deque(maxlen=keep_errors)
        self.lags: deque[float] = deque(maxlen=keep_lags)

    def vendor_error(self, at: datetime, error: Exception) -> None:
        message = str(getattr(error, "message", None) or error)[:300]
        self.errors.append(VendorErrorSeen(at, type(error).__name__, message))

    def started_late(self, seconds: float) -> None:
        self.lags.append(max(0.0, seconds))

    def worst_lag(self) -> float | None:
        return max(self.lags) if self.lags else None


class Lane:
    """Everything that paces one provider's vendor traffic."""

    def __init__(self, settings: PollSettings, clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.semaphore = asyncio.Semaphore(settings.concurrency)
        self.rate = RateLimiter(settings.rate_per_s, clock)
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s, clock)
        self.health = LaneHealth()
        #: replicas sharing this vendor's limits (the lease keeper keeps it current; 1 for a single process)
        self.replicas = 1

    def share(self, replicas: int) -> None:
        """Several replicas poll this vendor: take a 1/replicas share of the configured rate and concurrency, so
        the totals the vendor sees stay as configured (concurrency at least 1 per replica)."""
        replicas = max(1, replicas)
        if replicas == self.replicas:
            return
        self.replicas = replicas
        self.rate.rate = self.settings.rate_per_s / replicas
        self.rate.capacity = max(1.0, self.rate.rate)
        self.rate.tokens = min(self.rate.tokens, self.rate.capacity)
        # polls holding the old semaphore finish with it; new ones queue on the resized one
        self.semaphore = asyncio.Semaphore(max(1, self.settings.concurrency // replicas))

    def concurrency(self) -> int:
        """Vendor requests this replica may have in flight now (its share of the configured concurrency)."""
        return max(1, self.settings.concurrency // self.replicas)

    def first_interval(self) -> float:
        return self.settings.initial_s

    def next_interval(self, current: float, *, changed: bool) -> float:
        """Back to the start after a change; otherwise multiply by the factor up to the cap."""
        if changed:
            return self.settings.initial_s
        return min(self.settings.max_s, current * self.settings.factor)

    def after_estimate(self, seconds: float) -> float:
        """A provider's suggested wait (from the vendor's estimate), kept within [initial_s, eta_max_s]."""
        return min(max(seconds, self.settings.initial_s), self.settings.eta_max_s)

    def jittered(self, interval: float) -> float:
        spread = interval * self.settings.jitter
        return max(0.0, interval + random.uniform(-spread, spread))
