"""Per-provider pacing on a FakeClock: backoff schedule, circuit breaker, rate limit."""

import asyncio

from gateway.provider import PollSettings
from gateway.testing.clock import FakeClock
from gateway.watch.lanes import CircuitBreaker, Lane, RateLimiter


def test_backoff_starts_doubles_caps_and_resets_on_change():
    lane = Lane(PollSettings(), FakeClock())
    schedule = [lane.first_interval()]
    for _ in range(6):
        schedule.append(lane.next_interval(schedule[-1], changed=False))
    assert schedule == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert lane.next_interval(10.0, changed=True) == 1.0


def test_jitter_stays_within_its_band():
    lane = Lane(PollSettings(jitter=0.2), FakeClock())
    values = [lane.jittered(10.0) for _ in range(500)]
    assert min(values) >= 8.0 and max(values) <= 12.0 and len(set(values)) > 10


async def test_breaker_opens_after_threshold_and_half_opens_after_reset():
    clock = FakeClock()
    breaker = CircuitBreaker(3, 5.0, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.allow() and not breaker.open
    breaker.failure()
    assert breaker.open and not breaker.allow() and breaker.retry_in() == 5.0
    await clock.advance(4.75)
    assert not breaker.allow() and breaker.retry_in() == 0.25
    await clock.advance(0.25)
    assert breaker.allow()  # one trial
    assert not breaker.allow()  # only one
    breaker.failure()  # the trial failed: open again for a whole reset period
    assert breaker.open and breaker.retry_in() == 5.0
    await clock.advance(5.0)
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and not breaker.open and breaker.failures == 0


async def test_rate_limiter_paces_acquisitions_on_its_clock():
    """4 per second: a burst of 4 at once, then one every 0.25 s of clock time, never earlier."""
    clock = FakeClock()
    limiter = RateLimiter(4.0, clock)
    start = clock()
    granted: list[float] = []

    async def acquire() -> None:
        await limiter.acquire()
        granted.append(clock() - start)

    waiters = [asyncio.create_task(acquire()) for _ in range(8)]
    await clock.advance(0)
    assert granted == [0.0] * 4  # the burst; the rest wait on the clock, not on wall time
    for _ in range(4):
        await clock.advance(0.125)
        before = len(granted)
        await clock.advance(0.125)
        assert len(granted) == before + 1
    await asyncio.wait_for(asyncio.gather(*waiters), 5)
    assert granted == [0.0] * 4 + [0.25, 0.5, 0.75, 1.0]


async def test_a_lane_paces_on_the_clock_it_is_given():
    clock = FakeClock()
    lane = Lane(PollSettings(rate_per_s=1.0, breaker_failures=1, breaker_reset_s=30.0), clock)
    await lane.rate.acquire()
    second = asyncio.create_task(lane.rate.acquire())
    await clock.advance(0.75)
    assert not second.done()
    await clock.advance(0.25)
    assert second.done()
    lane.breaker.failure()
    assert lane.breaker.retry_in() == 30.0
    await clock.advance(30.0)
    assert lane.breaker.allow()


async def test_replicas_share_a_lane_so_the_vendor_sees_the_configured_totals():
    """Two replicas: each gets half the rate (2 of 4 per second) and half the concurrency (3 of 6)."""
    clock = FakeClock()
    lane = Lane(PollSettings(rate_per_s=4.0, concurrency=6), clock)
    lane.share(2)
    start = clock()
    granted: list[float] = []

    async def poll() -> None:
        async with lane.semaphore:
            await lane.rate.acquire()
            granted.append(clock() - start)
            await clock.sleep(10.0)  # a slow vendor: the slot stays taken

    tasks = [asyncio.create_task(poll()) for _ in range(6)]
    await clock.advance(0)
    assert granted == [0.0, 0.0]  # a burst of this replica's 2 tokens
    await clock.advance(0.5)
    assert granted == [0.0, 0.0, 0.5]  # then 2 per second; a 4th waits for one of the 3 slots
    await clock.advance(2.0)
    assert len(granted) == 3
    lane.share(1)  # the other replica left: back to the whole limits
    assert lane.rate.rate == 4.0 and lane.replicas == 1
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
