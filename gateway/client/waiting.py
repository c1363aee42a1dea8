"""`wait()`: follow one job to its end over the event stream, long polls or plain polls, whichever works.

The event stream gives every version; after a dropped connection (or a server restart) it is opened again
with Last-Event-ID, so no version is missed. Where no stream can be had (a proxy that buffers or refuses
it), long polls take over, and where those fail too, polls at the job's `poll_after_s`."""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from gateway.client.errors import ProblemError, StreamNotSupported, TransportError, WaitTimeout
from gateway.models import Job

#: the longest one long poll asks the server to hold
LONG_POLL_S = 30.0
#: streams in a row that open but end with nothing new before the client stops trusting them
EMPTY_STREAMS_BEFORE_FALLBACK = 5
#: waits between attempts to reach a gateway that is away (restarting): from the first to the cap
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 2.0
#: answers that say "this way of following is not available here" rather than "the gateway is away"
NOT_AVAILABLE = frozenset({404, 405, 406, 422, 501})


class Mode(enum.Enum):
    STREAM = "stream"
    LONG_POLL = "long poll"
    POLL = "poll"


class _Client(Protocol):
    async def get(self, job_id: str, *, wait: float | None = None, version: int | None = None) -> Job: ...

    def events(self, job_id: str, *, last_event_id: int | None = None) -> AsyncIterator[Job]: ...


class Follower:
    """One `wait()`: the job so far, the way it is followed, and the deadline."""

    def __init__(
        self,
        client: _Client,
        job_id: str,
        *,
        timeout: float | None,
        on_update: Callable[[Job], None] | None,
        mode: Mode = Mode.STREAM,
    ) -> None:
        self.client = client
        self.job_id = job_id
        self.timeout = timeout
        self.on_update = on_update
        self.mode = mode
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.job: Job | None = None
        self._away = 0
        self._empty_streams = 0

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _seen(self, job: Job) -> None:
        if self.job is None or job.version > self.job.version:
            self.job = job
            if self.on_update is not None:
                self.on_update(job)

    async def run(self) -> Job:
        try:
            async with asyncio.timeout(self._left()):
                return await self._follow()
        except TimeoutError:
            if self.job is None:
                raise TransportError(f"the gateway did not answer within {self.timeout:g} s") from None
            raise WaitTimeout(self.job, self.timeout or 0.0) from None

    async def _follow(self) -> Job:
        while self.job is None:
            try:
                self._seen(await self.client.get(self.job_id))
            except TransportError:
                await self._gateway_away()
        job = self.job
        while not job.terminal:
            try:
                await self._step(job)
                self._away = 0
            except TransportError:
                await self._gateway_away()
            except StreamNotSupported:
                self._fall_back()
            except ProblemError as exc:
                if exc.status in NOT_AVAILABLE and self.mode is not Mode.POLL:
                    self._fall_back()
                elif exc.status >= 500:
                    await self._gateway_away()
                else:
                    raise
            assert self.job is not None
            job = self.job
        return job

    async def _step(self, job: Job) -> None:
        if self.mode is Mode.STREAM:
            got = False
            async for event in self.client.events(self.job_id, last_event_id=job.version):
                got = got or event.version > job.version
                self._seen(event)
                self._away = 0
                if event.terminal:
                    return
            # the server ended the stream before the end (its shutdown): open it again from the last version
            self._empty_streams = 0 if got else self._empty_streams + 1
            if self._empty_streams >= EMPTY_STREAMS_BEFORE_FALLBACK:
                self._fall_back()
            elif not got:
                await self._gateway_away()
        elif self.mode is Mode.LONG_POLL:
            left = self._left()
            wait = LONG_POLL_S if left is None else max(0.0, min(LONG_POLL_S, left))
            self._seen(await self.client.get(self.job_id, wait=round(wait, 1), version=job.version))
        else:
            await asyncio.sleep(max(0.05, job.poll_after_s or 1.0))
            self._seen(await self.client.get(self.job_id))

    def _fall_back(self) -> None:
        self.mode = Mode.LONG_POLL if self.mode is Mode.STREAM else Mode.POLL

    async def _gateway_away(self) -> None:
        """The gateway is not answering (restarting, overloaded): try again after a short, growing pause."""
        await asyncio.sleep(min(RECONNECT_MAX_S, RECONNECT_FIRST_S * 2**self._away))
        self._away += 1
