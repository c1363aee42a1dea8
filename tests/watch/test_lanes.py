"""Per-provider pacing: backoff schedule, circuit breaker, rate limit."""

import asyncio
import time

from gateway.provider import PollSettings
from gateway.watch.lanes import CircuitBreaker, Lane, RateLimiter


def test_backoff_starts_doubles_caps_and_resets_on_change():
    lane = Lane(PollSettings())
    schedule = [lane.first_interval()]
    for _ in range(6):
        schedule.append(lane.next_interval(schedule[-1], changed=False))
    assert schedule == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert lane.next_interval(10.0, changed=True) == 1.0


def test_jitter_stays_within_its_band():
    lane = Lane(PollSettings(jitter=0.2))
    values = [lane.jittered(10.0) for _ in range(500)]
    assert min(values) >= 8.0 and max(values) <= 12.0 and len(set(values)) > 10


def test_breaker_opens_after_threshold_and_half_opens_after_reset():
    now = [0.0]
    breaker = CircuitBreaker(3, 5.0, clock=lambda: now[0])
    for _ in range(2):
        breaker.failure()
    assert breaker.allow() and not breaker.open
    breaker.failure()
    assert breaker.open and not breaker.allow() and breaker.retry_in() == 5.0
    now[0] = 5.0
    assert breaker.allow()  # one trial
    assert not breaker.allow()  # only one
    breaker.success()
    assert breaker.allow() and not breaker.open


async def test_rate_limiter_paces_acquisitions():
    limiter = RateLimiter(20.0)
    started = time.monotonic()
    await asyncio.gather(*[limiter.acquire() for _ in range(40)])
    assert time.monotonic() - started >= 0.9  # 20 burst, then 20 more at 20/s
