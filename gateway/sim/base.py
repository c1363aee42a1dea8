"""The shared machinery of every vendor simulator: jobs that progress over time, auth, faults, stats,
and the `__sim__` control API (contract section 6). A vendor simulator subclasses `Simulator`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FAULTS = (
    "http_500", "http_503", "http_429", "delay", "reset", "malformed_json", "unknown_status", "quota_exceeded",
)  # fmt: skip
UNKNOWN_STATUS = "sim_unknown_status"
_STATS_PATH = "/__sim__/stats"
#: vendor requests kept in the request log (`GET /__sim__/requests`)
REQUEST_LOG = 100_000


@dataclass
class SimJob:
    """One job as the vendor sees it. `view` is what the vendor's status endpoint shows."""

    id: str
    view: dict[str, Any]
    created: float
    #: automatic progression stopped (the control API forced a state)
    pinned: bool = False
    #: anything else the simulator keeps (input, outcome, files)
    private: dict[str, Any] = field(default_factory=dict)
    #: how many steps have already been applied
    applied: int = 0


@dataclass
class Fault:
    kind: str
    remaining: int
    retry_after_s: float | None = None
    delay_s: float = 0.0


class Simulator:
    """Base class. Subclasses set `prefix`, implement `routes()`, `check_auth()`, `unauthorized()` and `step()`."""

    prefix: ClassVar[str] = ""
    #: where the vendor's status is in its bodies (dotted for a nested one); the `unknown_status` fault sets it
    status_field: ClassVar[str] = "status"

    def __init__(self, step_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.step_s = step_s
        self.clock = clock
        self.jobs: dict[str, SimJob] = {}
        self.faults: deque[Fault] = deque()
        self.stats: Counter[str] = Counter()
        #: the latest vendor requests (wall time, method, path, Host header), for tests that ask who polled what
        self.requests: deque[tuple[float, str, str, str]] = deque(maxlen=REQUEST_LOG)

    # -- for subclasses ------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        """The vendor's own routes, relative to the prefix."""
        raise NotImplementedError

    def check_auth(self, request: web.Request) -> bool:
        """True when the request carries an accepted credential (any non-empty key but `invalid`)."""
        return True

    def unauthorized(self) -> web.Response:
        """The vendor's own 401 answer."""
        return web.json_response({"detail": "Not authenticated"}, status=401)

    def step(self, job: SimJob, n: int) -> None:
        """Apply progression step number `n` (1, 2, ...) to the job's view; called once per elapsed step."""

    def not_found(self) -> web.Response:
        return web.json_response({"detail": "Not Found"}, status=404)

    def status_answer(self, job: SimJob | None) -> web.Response:
        """A status read's answer: the job's view, or the vendor's 404 for a job it does not know."""
        return self.not_found() if job is None else web.json_response(job.view)

    def quota_exceeded(self) -> web.Response:
        """The vendor's own answer when the account's quota is used up or it wants payment (the
        `quota_exceeded` fault); HTTP 402 unless the vendor says it otherwise (e.g. 456)."""
        return web.json_response({"detail": "Payment Required"}, status=402)

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def key_ok(value: str | None) -> bool:
        return value is not None and value.strip() not in ("", "invalid")

    def new_job(self, view: dict[str, Any], *, job_id: str | None = None, **private: Any) -> SimJob:
        job = SimJob(id=job_id or str(uuid.uuid4()), view=view, created=self.clock(), private=dict(private))
        self.jobs[job.id] = job
        return job

    def get_job(self, job_id: str) -> SimJob | None:
        """The job with its view advanced to now (unless pinned)."""
        job = self.jobs.get(job_id)
        if job is not None:
            self.advance(job)
        return job

    def advance(self, job: SimJob) -> None:
        if job.pinned or self.step_s <= 0:
            return
        due = int((self.clock() - job.created) / self.step_s)
        while job.applied < due and not job.pinned:
            job.applied += 1
            self.step(job, job.applied)

    # -- the application ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._vendor_middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/__sim__/jobs/{job_id}/state", self._control_state),
                web.post("/__sim__/faults", self._control_faults),
                web.delete("/__sim__/faults", self._control_clear_faults),
                web.get(_STATS_PATH, self._control_stats),
                web.delete("/__sim__/stats", self._control_reset_stats),
                web.get("/__sim__/requests", self._control_requests),
            ]
        )
        app.add_routes(self.routes())
        return app

    @web.middleware
    async def _vendor_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if "/__sim__/" in request.path:
            return await handler(request)
        resource = request.match_info.route.resource
        template = resource.canonical if resource is not None else request.path
        prefix = self._mounted_prefix(request)
        if prefix and template.startswith(prefix):
            template = template[len(prefix) :] or "/"
        self.stats[f"{request.method} {template}"] += 1
        self.requests.append((time.time(), request.method, request.path, request.host))
        fault = self._take_fault()
        if fault is not None:
            early = await self._apply_fault(request, fault)
            if early is not None:
                return early
        if not self.check_auth(request):
            return self.unauthorized()
        response = await handler(request)
        if fault is not None and fault.kind == "unknown_status" and isinstance(response, web.Response):
            response = self._with_unknown_status(response)
        return response

    def _mounted_prefix(self, request: web.Request) -> str:
        """The prefix this simulator's app is mounted under (read off its own control route)."""
        if self.prefix:
            return self.prefix
        for resource in request.app.router.resources():
            canonical = resource.canonical
            if canonical.endswith(_STATS_PATH):
                return canonical[: -len(_STATS_PATH)]
        return ""

    def _take_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.popleft()
        return fault

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        if fault.kind == "http_500":
            return web.json_response({"detail": "Internal Server Error"}, status=500)
        if fault.kind == "http_503":
            headers = {"Retry-After": _seconds(fault.retry_after_s)} if fault.retry_after_s is not None else {}
            return web.json_response({"detail": "Service Unavailable"}, status=503, headers=headers)
        if fault.kind == "http_429":
            after = fault.retry_after_s if fault.retry_after_s is not None else 1
            return web.json_response(
                {"detail": "Too Many Requests"}, status=429, headers={"Retry-After": _seconds(after)}
            )
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_s)
            return None
        if fault.kind == "reset":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # the connection is gone; nothing is written
        if fault.kind == "quota_exceeded":
            return self.quota_exceeded()
        if fault.kind == "malformed_json":
            return web.Response(body=b'{"status": "proc', content_type="application/json")
        return None  # unknown_status: handled on the way out

    def _with_unknown_status(self, response: web.Response) -> web.Response:
        try:
            body = json.loads(response.body) if isinstance(response.body, bytes | bytearray) else None
        except (TypeError, ValueError):
            return response
        *parents, last = self.status_field.split(".")
        node = body
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and last in node:
            node[last] = UNKNOWN_STATUS
            return web.json_response(body, status=response.status)
        return response

    # -- control API -----------------------------------------------------------------------------
    async def _control_state(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return web.json_response({"detail": "no such simulated job"}, status=404)
        patch = await _json_object(request)
        if patch is None:
            return web.json_response({"detail": "body must be a JSON object"}, status=400)
        self.advance(job)
        job.pinned = True
        job.view.update(patch)
        return web.json_response(job.view)

    async def _control_faults(self, request: web.Request) -> web.Response:
        spec = await _json_object(request)
        if spec is None or spec.get("fault") not in FAULTS:
            return web.json_response({"detail": f"fault must be one of {', '.join(FAULTS)}"}, status=400)
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            return web.json_response({"detail": "count must be a positive integer"}, status=400)
        retry_after = spec.get("retry_after_s")
        delay = spec.get("delay_s", 1.0)
        for value in (retry_after, delay):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                return web.json_response({"detail": "retry_after_s and delay_s must be numbers >= 0"}, status=400)
        self.faults.append(Fault(spec["fault"], count, retry_after, float(delay)))
        return web.json_response({"queued": [f.__dict__ for f in self.faults]})

    async def _control_clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response({"queued": []})

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": dict(self.stats)})

    async def _control_requests(self, request: web.Request) -> web.Response:
        """The request log: [[unix time, method, path, host], ...], oldest first."""
        return web.json_response({"requests": [list(entry) for entry in self.requests]})

    async def _control_reset_stats(self, request: web.Request) -> web.Response:
        self.stats.clear()
        return web.json_response({"requests": {}})


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None
