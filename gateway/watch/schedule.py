"""The watcher's schedule (issue 10): one entry per watched job with its latest snapshot (`Watched`), a heap of due
times, and per provider a ready queue drained by at most the lane's concurrency of worker tasks, so however many
jobs are due at once the engine holds a bounded number of tasks (backpressure), never one waiting task per job.
`gateway.watch.engine.Watcher` adds what one poll does."""

from __future__ import annotations

import abc
import asyncio
import heapq
import itertools
from collections import OrderedDict, deque
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from gateway.clock import Clock
from gateway.states import CanonicalStatus, StaleReason
from gateway.store.records import JobRecord
from gateway.watch.lanes import Lane

#: finished jobs whose last snapshot stays in memory for readers (the oldest are forgotten first)
FINISHED_KEPT = 2_000
#: the scheduler sleeps at least this long between two timed wake-ups, so polls due close together start together
#: (10,000 jobs at a 10 s cadence: about 100 wake-ups a second instead of 1,000); a poll starts at most this late.
#: A job scheduled to be the next one due (`watch`, a short retry) still wakes it at once.
COALESCE_S = 0.01


class Watched:
    """One watched job: the record last written to (or read from) the store, the checks made since (kept as plain
    values, so the thousand polls a second that find nothing new allocate no new records for the garbage collector
    to walk), when its poll is due, its interval, since when keeping its result has been failing, and the vendor's
    last answer with its canonical status (a poll answered with the same body again normalizes nothing)."""

    __slots__ = ("_check", "_current", "answer", "answer_status", "due", "interval", "job", "result_since")

    def __init__(self, job: JobRecord, interval: float) -> None:
        self.job = job
        #: (checked_at, stale, stale_reason, estimated_finish_at) of the latest check newer than `job`, or None
        self._check: tuple[datetime | None, bool, StaleReason | None, datetime | None] | None = None
        self._current: JobRecord | None = None
        self.interval = interval
        self.due = 0.0
        self.result_since: float | None = None
        #: the vendor's last answer (its body) about the job as it is now, and the canonical status of that body
        #: (two slots, not a pair: a tuple holding a model would be one more object for the garbage collector)
        self.answer: Any = None
        self.answer_status: CanonicalStatus | None = None

    def set_job(self, job: JobRecord) -> None:
        """The job as the store has it now (every check before it is in it)."""
        self.job, self._check, self._current = job, None, None
        self.answer = self.answer_status = None

    def checked(self, at: datetime, estimated_finish_at: datetime | None) -> None:
        """The vendor confirmed the snapshot at `at` (with its latest estimate)."""
        self._check, self._current = (at, False, None, estimated_finish_at), None

    def stale(self, reason: StaleReason) -> None:
        """The vendor could not confirm the snapshot, for `reason` (the last check's time stays)."""
        job = self.current
        if not job.stale or job.stale_reason != reason:
            self._check, self._current = (job.checked_at, True, reason, job.estimated_finish_at), None

    @property
    def current(self) -> JobRecord:
        """The job with the checks made since it was stored: what readers see."""
        if self._check is None:
            return self.job
        if self._current is None:
            checked_at, stale, reason, finish = self._check
            update = {"checked_at": checked_at, "stale": stale, "stale_reason": reason, "estimated_finish_at": finish}
            self._current = self.job.model_copy(update=update)
        return self._current


class Scheduler(abc.ABC):
    """When each watched job is polled next, and the tasks that poll them (see the module docstring)."""

    def __init__(self, lanes: dict[str, Lane], clock: Clock) -> None:
        self.lanes = lanes
        self.clock = clock
        self._watches: dict[str, Watched] = {}
        self._finished: OrderedDict[str, JobRecord] = OrderedDict()
        self._heap: list[tuple[float, int, str]] = []
        self._ready: dict[str, deque[tuple[float, str]]] = {}
        self._workers: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._seq = itertools.count()
        self._wake = asyncio.Event()

    @abc.abstractmethod
    async def _poll(self, job_id: str, done: asyncio.Future[None]) -> None:
        """Poll the job once; resolve `done` (its entry in the in-flight table) when finished, however."""

    # -- what readers see ----------------------------------------------------------------------
    def snapshot(self, job_id: str) -> JobRecord | None:
        """The latest snapshot of a job this process watches (or finished lately); None: ask the store."""
        watched = self._watches.get(job_id)
        return watched.current if watched is not None else self._finished.get(job_id)

    def held(self, job_id: str) -> tuple[JobRecord, float | None] | None:
        """`snapshot` and its `poll_after` with one look-up (a cached read's), or None."""
        watched = self._watches.get(job_id)
        if watched is None:
            job = self._finished.get(job_id)
            return None if job is None else (job, self.poll_after(job))
        job = watched.current
        return job, None if job.terminal else self._due_in(watched)

    def watching(self) -> int:
        return len(self._watches)

    def in_flight(self) -> int:
        """Polls running now."""
        return len(self._inflight)

    def polling(self, job_id: str) -> bool:
        """A poll of this job is in flight."""
        return job_id in self._inflight

    def due_at(self, job_id: str) -> float | None:
        """The clock time the job's current (or next) poll was due; None when it is not watched."""
        watched = self._watches.get(job_id)
        return watched.due if watched is not None else None

    def poll_after(self, job: JobRecord) -> float | None:
        """Seconds until the gateway will next ask the vendor about this job; None once it is terminal."""
        if job.terminal:
            return None
        watched = self._watches.get(job.id)
        if watched is None:
            lane = self.lanes.get(job.provider)
            return lane.first_interval() if lane else None
        return self._due_in(watched)

    def _due_in(self, watched: Watched) -> float:
        """Seconds until the watched job's next poll (a little after it is due: its answer is in by then), to the
        millisecond (as `round(left + 0.05, 3)`, without its decimal rounding: every cached read asks)."""
        left = watched.due - self.clock()
        return int((left if left > 0.0 else 0.0) * 1000.0 + 50.5) / 1000.0

    # -- scheduling --------------------------------------------------------------------------
    def watch(self, job: JobRecord, *, delay: float | None = None) -> None:
        """Start (or keep) watching a job; the first poll after `delay` (default: the provider's first interval).
        A record at least as new as the snapshot held replaces it."""
        lane = self.lanes.get(job.provider)
        if lane is None:
            return
        watched = self._watches.get(job.id)
        if watched is None:
            watched = self._watches[job.id] = Watched(job, lane.first_interval())
        elif job.version >= watched.job.version:
            watched.set_job(job)
        self._schedule(job.id, watched, watched.interval if delay is None else delay)

    def _schedule(self, job_id: str, watched: Watched, delay: float) -> None:
        watched.due = due = self.clock() + delay
        heapq.heappush(self._heap, (due, next(self._seq), job_id))
        if self._heap[0][2] == job_id:
            self._wake.set()

    def _finish(self, job: JobRecord) -> None:
        """Stop watching; the last snapshot stays readable from memory for a while."""
        self._watches.pop(job.id, None)
        self._finished[job.id] = job
        if len(self._finished) > FINISHED_KEPT:
            self._finished.popitem(last=False)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                due, _, job_id = heapq.heappop(self._heap)
                watched = self._watches.get(job_id)
                if watched is not None and watched.due == due:  # else superseded by a later schedule
                    self._enqueue(job_id, watched)
            timeout = max(self._heap[0][0] - now, COALESCE_S) if self._heap else 3600.0
            await self.clock.wait(self._wake, timeout)

    def _enqueue(self, job_id: str, watched: Watched) -> None:
        """Queue a due job for its provider's workers; start one more worker while the lane allows it."""
        provider = watched.job.provider
        ready = self._ready.setdefault(provider, deque())
        ready.append((watched.due, job_id))
        busy = self._workers.get(provider, 0)
        if busy < self.lanes[provider].concurrency():
            self._workers[provider] = busy + 1
            self._spawn(self._work(provider, ready), f"gateway-poll-{provider}")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _work(self, provider: str, ready: deque[tuple[float, str]]) -> None:
        lane = self.lanes[provider]
        try:
            while ready:
                due, job_id = ready.popleft()
                watched = self._watches.get(job_id)
                if watched is None or watched.due != due or job_id in self._inflight:
                    continue  # unwatched, rescheduled, or being polled by poll_now meanwhile
                lane.health.started_late(self.clock() - due)
                done = self._inflight[job_id] = asyncio.get_running_loop().create_future()
                await self._poll(job_id, done)
        finally:
            self._workers[provider] -= 1
