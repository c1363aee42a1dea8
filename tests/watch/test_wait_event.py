"""`gateway.clock.wait_event`, the wait of the scheduler between batches of due polls and of every long poll: the
event or the timeout, and a cancellation is never lost, even one arriving as the event is set."""

from __future__ import annotations

import asyncio

import pytest

from gateway.clock import wait_event


async def test_an_event_set_while_waiting_ends_the_wait_with_true() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, 10.0))
    await asyncio.sleep(0)
    event.set()
    assert await asyncio.wait_for(waiting, 1.0) is True


async def test_an_event_already_set_answers_at_once_and_a_timeout_answers_false() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.0) is False
    assert await wait_event(event, 0.02) is False
    event.set()
    assert await wait_event(event, 0.0) is True


async def test_a_cancellation_arriving_as_the_event_is_set_is_not_swallowed() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, 10.0))
    await asyncio.sleep(0)
    event.set()  # the wait could end now ...
    waiting.cancel()  # ... but the task is being cancelled (a shutdown): it must end cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert waiting.cancelled()


async def test_no_task_is_left_behind_by_a_wait() -> None:
    before = len(asyncio.all_tasks())
    event = asyncio.Event()
    await wait_event(event, 0.01)
    waiting = asyncio.create_task(wait_event(event, 10.0))
    await asyncio.sleep(0)
    assert len(asyncio.all_tasks()) == before + 1  # the waiting task itself, nothing it started
    event.set()
    await waiting
    assert len(asyncio.all_tasks()) == before
