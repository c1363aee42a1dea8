"""The public Job shape of a stored job (contract section 2), now and at an earlier version.

Every reader of a job (HTTP responses, server-sent events, webhook bodies) renders it here, so the three
cannot disagree."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from gateway.attempts import as_of_version, shown_attempts
from gateway.models import Job, JobLinks
from gateway.states import CanonicalStatus, Issue
from gateway.store.records import JobRecord, TransitionRecord

log = logging.getLogger("gateway.render")

#: the `type` of a webhook event
TRANSITION_EVENT = "job.transition"
#: the free-form fields of a stored job: what may hold a value that cannot be rendered
FREE_FORM = ("metadata", "vendor_ref", "attempts")
#: how deep a free-form value is shown when the whole of it cannot be
SHOWN_DEPTH = 16


def render_job(job: JobRecord, poll_after_s: float | None, now: datetime | None = None) -> Job:
    """The public Job shape: every field present, null where unknown. `eta_s` counts from `now` (default: when
    the vendor was last asked). Never a private vendor_ref field: `job.private_ref` is not read here."""
    status = job.status
    base = f"/v1/jobs/{job.id}"
    finish = None if status.terminal else job.estimated_finish_at
    eta_s = None
    if finish is not None:
        since = now or job.checked_at or job.updated_at
        eta_s = round(max(0.0, (finish - since).total_seconds()), 3)
    return Job(
        id=job.id,
        provider=job.provider,
        vendor_ref=job.vendor_ref,
        state=status.state,
        terminal=status.terminal,
        vendor_status=status.vendor_status,
        stage=status.stage,
        progress=status.progress,
        result_available=job.result_available,
        error=status.error,
        action=status.action,
        issues=status.issues,
        version=job.version,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        stale=job.stale,
        checked_at=job.checked_at,
        poll_after_s=poll_after_s,
        eta_s=eta_s,
        estimated_finish_at=finish,
        stale_reason=job.stale_reason if job.stale else None,
        metadata=job.metadata,
        route=job.route,
        attempts=shown_attempts(job),
        shadow_of=job.shadow_of,
        shadow=job.shadow,
        links=JobLinks.model_validate({"self": base, "result": f"{base}/result", "events": f"{base}/events"}),
    )


def job_body(job: JobRecord, poll_after_s: float | None, now: datetime | None = None) -> dict[str, Any]:
    """The Job as JSON-ready data. Never fails: a stored value that cannot be rendered (nested too deeply,
    text UTF-8 cannot encode, a number that is not finite) is shown cut to what can be, with an issue
    naming the field, so one bad job never breaks a listing, a stream or a webhook."""
    try:
        return render_job(job, poll_after_s, now).model_dump(mode="json", by_alias=True)
    except Exception:  # any failure here would hide the job: render what can be rendered
        log.warning("job %s holds a value that cannot be rendered; showing what can be", job.id, exc_info=True)
    update: dict[str, Any] = {name: plain(getattr(job, name)) for name in FREE_FORM}
    notes = [
        Issue(code="unrenderable", message="shown in part: the stored value cannot be rendered", target=name)
        for name in FREE_FORM
        if not _same(update[name], getattr(job, name))
    ]
    status = job.status.model_copy(update={"issues": [*job.status.issues, *notes]})
    body = render_job(job.model_copy(update={**update, "status": status}), poll_after_s, now)
    result: dict[str, Any] = plain(body.model_dump(mode="json", by_alias=True))
    return result


def dumps(data: Any) -> bytes:
    """The gateway's JSON bytes: compact, ASCII."""
    return json.dumps(data, separators=(",", ":")).encode()


class JobView:
    """A job's JSON body rendered once per snapshot (issue 10): the bytes around `poll_after_s` and `eta_s` (the
    two fields that move with time, next to each other in the Job, filled in per answer) and a weak ETag of
    everything else."""

    __slots__ = ("etag", "finish", "head", "key", "tail")

    def __init__(self, job: JobRecord) -> None:
        self.key = view_key(job)
        self.finish = None if job.terminal else job.estimated_finish_at
        data = job_body(job, None)
        names = list(data)
        cut = names.index("poll_after_s")
        assert names[cut + 1] == "eta_s", names
        self.head = dumps({name: data[name] for name in names[:cut]})[:-1] + b',"poll_after_s":'
        self.tail = b"," + dumps({name: data[name] for name in names[cut + 2 :]})[1:]
        self.etag = 'W/"' + hashlib.blake2b(self.head + self.tail, digest_size=12).hexdigest() + '"'

    def body(self, poll_after_s: float | None, now: Callable[[], datetime]) -> bytes:
        """The Job as JSON, byte for byte what `job_body(job, poll_after_s, now())` gives (`now` is only called
        when the job has an estimate to count down)."""
        eta = b"null"
        if self.finish is not None:
            eta = repr(round(max(0.0, (self.finish - now()).total_seconds()), 3)).encode()
        poll = b"null" if poll_after_s is None else repr(poll_after_s).encode()
        return b"".join((self.head, poll, b',"eta_s":', eta, self.tail))


def view_key(job: JobRecord) -> tuple[Any, ...]:
    """What every change of a stored job's public body changes: each store write of a job moves one of these (a
    new vendor_ref or estimate is only ever written together with a new checked_at)."""
    return (job.version, job.checked_at, job.stale, job.stale_reason, job.result_available)


class ViewCache:
    """Rendered JobViews of the jobs read lately, at most `limit` (the least recently used are dropped)."""

    def __init__(self, limit: int = 20_000) -> None:
        self.limit = limit
        self._views: OrderedDict[str, JobView] = OrderedDict()

    def view(self, job: JobRecord) -> JobView:
        cached = self._views.get(job.id)
        if cached is not None and cached.key == view_key(job):
            self._views.move_to_end(job.id)
            return cached
        fresh = self._views[job.id] = JobView(job)
        self._views.move_to_end(job.id)
        if len(self._views) > self.limit:
            self._views.popitem(last=False)
        return fresh

    def __len__(self) -> int:
        return len(self._views)


def job_at(job: JobRecord, transition: TransitionRecord) -> JobRecord:
    """The job as it was at `transition`'s version: that version's status and time, the job's identity.

    Derived from the transition alone, so the same version always renders the same way (a webhook retried
    days later carries the body of its first try); a routed job shows the vendor attempt it was on then. A
    terminal version's result was kept before it was recorded.
    """
    terminal = transition.status.terminal
    return as_of_version(job, transition.version).model_copy(
        update={
            "status": transition.status,
            "version": transition.version,
            "updated_at": transition.at,
            "checked_at": transition.at,
            "finished_at": transition.at if terminal else None,
            "result_available": terminal and transition.status.state.has_result and job.result_available,
            "stale": False,
            "stale_reason": None,
            "estimated_finish_at": estimated_finish(transition.at, transition.status),
        }
    )


def estimated_finish(at: datetime, status: CanonicalStatus) -> datetime | None:
    """When the vendor expects to finish, by the estimate of a status read at `at`."""
    if status.eta_s is None or status.terminal:
        return None
    return at + timedelta(seconds=status.eta_s)


def webhook_body(job_then: JobRecord, event_id: str) -> dict[str, Any]:
    """The body of the webhook event for one version of a job (contract section 3)."""
    return {"id": event_id, "type": TRANSITION_EVENT, "job": job_body(job_then, None)}


def plain(value: Any, depth: int = SHOWN_DEPTH) -> Any:
    """A JSON value that can always be sent: containers below `depth` levels cut to null, text UTF-8 cannot
    encode written with replacement characters, numbers that are not finite as null. Iterative."""
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        item, parent, slot, level = stack.pop()
        if isinstance(item, dict | list | tuple) and level > depth:
            parent[slot] = None
        elif isinstance(item, dict):
            copy: dict[str, Any] = {}
            parent[slot] = copy
            for key, child in item.items():
                name = _text(str(key))
                copy[name] = None
                stack.append((child, copy, name, level + 1))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((child, items, i, level + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = _text(item)
        elif isinstance(item, float):
            parent[slot] = item if math.isfinite(item) else None
        elif item is None or isinstance(item, bool | int):
            parent[slot] = item
        else:
            parent[slot] = _text(str(item))
    return root[0]


def _same(shown: Any, stored: Any) -> bool:
    try:
        return bool(shown == stored)
    except RecursionError:
        return False


def _text(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8", "replace").decode("utf-8")
