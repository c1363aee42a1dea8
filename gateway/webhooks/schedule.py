"""When an event is tried again: the configured schedule with jitter, a receiver's Retry-After, and the end.

Try 1 goes at once; after failed try n (n = 1, 2, ...) the next one waits `retry_schedule_s[n - 1]` (less up to
`jitter` of it), or longer when the receiver said so with Retry-After (at most `max_retry_after_s`). After
`len(retry_schedule_s) + 1` failed tries the event is dead-lettered: kept, shown as failed, replayable.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from datetime import datetime
from email.utils import parsedate_to_datetime

from gateway.config import WebhookConfig

_DELTA_SECONDS = re.compile(r"[0-9]{1,10}")


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def next_delay(
    step: int,
    settings: WebhookConfig,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds before the next try after failed try number `step` (1-based) of the current schedule, or None when
    that was the last try (the event is dead-lettered)."""
    if step < 1:
        raise ValueError("step counts the tries made, from 1")
    if step > len(settings.retry_schedule_s):
        return None
    nominal = settings.retry_schedule_s[step - 1]
    delay = nominal * (1.0 - settings.jitter * rand())
    if retry_after is not None:
        delay = max(delay, min(retry_after, settings.max_retry_after_s))
    return delay


def horizon_s(settings: WebhookConfig) -> float:
    """The longest an event is tried for without Retry-After: from its first try to its last."""
    return sum(settings.retry_schedule_s)


def describe_seconds(seconds: float) -> str:
    """A short human duration: "45 s", "5 min", "3 h", "3 days 4 h"."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{hours:.0f} h"
    days, rest = divmod(round(hours), 24)
    return f"{days} days {rest} h" if rest else f"{days} days"
