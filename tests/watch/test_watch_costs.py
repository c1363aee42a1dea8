"""What a poll costs and how the watcher paces itself, with a throwaway provider and a tiny vendor:
- a poll that finds nothing new reads nothing from the store and writes only a batched freshness note;
- a vendor answer equal to the job's previous one is not normalized again; a different one is, and is recorded;
- reads of watched jobs are answered from memory;
- however many jobs are due, at most `concurrency` polls (and tasks) exist per provider;
- keeping a result that keeps failing goes at the poll backoff's pace, counts towards the circuit breaker, and
  after `result_deadline_s` ends the job with `result_unavailable` (time driven by the FakeClock, never slept)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web

from gateway.config import parse_config
from gateway.models import ResultParts
from gateway.provider import Capabilities
from gateway.server.app import create_app
from gateway.server.keys import GATEWAY, STORE
from gateway.states import State
from gateway.testing.clock import FakeClock
from gateway.vendor_http import path_segment
from support.plugins import TinyVendorProvider, registered

KEY = "tenant-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}


class TinyProvider(TinyVendorProvider):
    name = "tiny_test"
    display_name = "Tiny (test)"
    capabilities = Capabilities()
    mapping = {"open": State.RUNNING, "done": State.SUCCEEDED}

    async def fetch_result(self, conn, ref, status_body) -> ResultParts:
        await conn.request_json("GET", f"/jobs/{path_segment(ref['id'])}/result")
        return ResultParts(outputs=[], vendor={})


class Vendor:
    """The tiny vendor: job states, a request counter, an optional gate that holds status answers, and a result
    endpoint that always fails."""

    def __init__(self) -> None:
        self.jobs: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.gate: asyncio.Event | None = None
        self.waiting = 0

    def app(self) -> web.Application:
        async def create(request: web.Request) -> web.Response:
            job_id = f"v{len(self.jobs) + 1}"
            self.jobs[job_id] = "open"
            return web.json_response({"id": job_id})

        async def status(request: web.Request) -> web.Response:
            self.requests["status"] += 1
            if self.gate is not None:
                self.waiting += 1
                await self.gate.wait()
                self.waiting -= 1
            return web.json_response({"status": self.jobs[request.match_info["id"]]})

        async def result(request: web.Request) -> web.Response:
            self.requests["result"] += 1
            return web.json_response({"detail": "try later"}, status=503)

        app = web.Application()
        app.add_routes([web.post("/jobs", create), web.get("/jobs/{id}", status), web.get("/jobs/{id}/result", result)])
        return app


@pytest.fixture
async def tiny(aiohttp_server, aiohttp_client, tmp_path):
    """`await tiny(poll={...}, clock=...)`: (client, app, vendor) with the tiny provider configured."""
    made = []

    async def build(*, poll: dict[str, Any], clock: FakeClock | None = None):
        vendor = Vendor()
        server = await aiohttp_server(vendor.app())
        config, settings = parse_config(
            {
                "tenants": {"t": {"keys": [KEY]}},
                "providers": {"tiny_test": {"base_url": str(server.make_url("")).rstrip("/"), "poll": poll}},
            }
        )
        extra = {"clock": clock} if clock is not None else {}
        app = create_app(config, settings, state_dir=tmp_path / f"state{len(made)}", **extra)
        client = await aiohttp_client(app)
        made.append(client)
        return client, app, vendor

    with registered(TinyProvider(), name="tiny-test"):
        yield build


async def _submit(client) -> dict[str, Any]:
    async with client.post("/v1/jobs", json={"provider": "tiny_test", "input": {}}, headers=AUTH) as resp:
        assert resp.status == 201
        return await resp.json()


class StoreSpy:
    """Counts the calls made to a store's methods (wrapping the live instance)."""

    def __init__(self, store: Any, names: tuple[str, ...]) -> None:
        self.calls: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.sizes: list[int] = []
        for name in names:
            original = getattr(store, name)

            def wrap(original=original, name=name):
                async def counted(*args, **kwargs):
                    self.calls[name] += 1
                    if name == "save_checks":
                        self.sizes.append(len(args[0]))
                    try:
                        return await original(*args, **kwargs)
                    finally:
                        self.done[name] += 1

                return counted

            setattr(store, name, wrap())


async def _until(predicate, *, within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_unchanged_polls_read_nothing_and_write_one_batch(tiny):
    clock = FakeClock()
    client, app, vendor = await tiny(poll={"initial_s": 5, "max_s": 5, "jitter": 0}, clock=clock)
    jobs = [await _submit(client) for _ in range(20)]
    watcher = app[GATEWAY].watcher
    for job in jobs:
        await watcher.poll_now(job["id"])  # queued -> running: one transition each, written at once
    await watcher.checks.flush()
    spy = StoreSpy(app[STORE], ("get_job", "record_status", "touch", "mark_stale", "save_checks"))
    polls = vendor.requests["status"]
    await clock.advance(5.0)  # every job is due once: 20 polls that find nothing new
    await _until(lambda: vendor.requests["status"] == polls + 20 and watcher.in_flight() == 0)
    assert watcher.checks.pending == 20
    for job in jobs:  # reads of watched jobs come from memory, and show the check already
        async with client.get(f"/v1/jobs/{job['id']}", headers=AUTH) as resp:
            body = await resp.json()
            assert resp.status == 200 and body["state"] == "running" and body["version"] == 2
    await clock.advance(1.0)  # the batch is written
    await _until(lambda: spy.done["save_checks"] == 1)
    assert spy.calls == Counter({"save_checks": 1}) and spy.sizes == [20]
    stored = await app[STORE].get_job(jobs[0]["id"])
    assert stored.checked_at == clock.now() - timedelta(seconds=1) and stored.version == 2


async def test_an_answer_equal_to_the_last_is_not_normalized_again(tiny):
    clock = FakeClock()
    client, app, vendor = await tiny(poll={"initial_s": 5, "max_s": 5, "jitter": 0}, clock=clock)
    provider = app[GATEWAY].providers["tiny_test"]
    seen: list[Any] = []
    rules = provider.normalize

    def counted(body: Any) -> Any:
        seen.append(body)
        return rules(body)

    provider.normalize = counted  # what canonical_status calls
    job = await _submit(client)
    watcher = app[GATEWAY].watcher
    await watcher.poll_now(job["id"])  # queued -> running: a transition
    seen.clear()
    for _ in range(4):  # four polls answered {"status": "open"} again
        polls = vendor.requests["status"]
        await clock.advance(5.0)
        await _until(lambda polls=polls: vendor.requests["status"] == polls + 1 and watcher.in_flight() == 0)
    assert seen == [{"status": "open"}]  # the first after the transition only: the others reuse its status
    vendor.jobs[job["vendor_ref"]["id"]] = "paused"  # a status word the mapping does not know: a new answer
    await clock.advance(5.0)
    await _until(lambda: len(seen) == 2 and watcher.in_flight() == 0)
    assert seen[-1] == {"status": "paused"}
    async with client.get(f"/v1/jobs/{job['id']}", headers=AUTH) as resp:
        body = await resp.json()
    assert body["state"] == "unknown" and body["vendor_status"] == "paused" and body["version"] == 3


async def test_polls_in_flight_never_exceed_the_lane_concurrency(tiny):
    client, app, vendor = await tiny(poll={"initial_s": 600, "max_s": 600, "concurrency": 3, "rate_per_s": 1000})
    watcher = app[GATEWAY].watcher
    store = app[STORE]
    jobs = [await _submit(client) for _ in range(60)]
    vendor.gate = asyncio.Event()  # every status answer waits
    for job in jobs:
        watcher.watch(await store.get_job(job["id"]), delay=0.0)
    await _until(lambda: vendor.waiting == 3)
    await asyncio.sleep(0.1)  # time for anything more to start, were it allowed to
    poll_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("gateway-poll-")]
    assert vendor.waiting == 3 and watcher.in_flight() == 3 and len(poll_tasks) == 3
    vendor.gate.set()
    await _until(lambda: vendor.requests["status"] >= 60 and watcher.in_flight() == 0)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("gateway-poll-")]


async def test_a_result_that_cannot_be_kept_is_retried_at_a_bounded_pace_then_the_job_ends(tiny):
    clock = FakeClock()
    poll = {"initial_s": 1, "factor": 2, "max_s": 10, "jitter": 0, "breaker_failures": 5, "breaker_reset_s": 30}
    client, app, vendor = await tiny(poll={**poll, "result_deadline_s": 600}, clock=clock)
    watcher = app[GATEWAY].watcher
    job = await _submit(client)
    vendor.jobs["v1"] = "done"
    tries_at: list[float] = []
    for _ in range(700):  # 700 s of fake time, a second at a time, letting each poll finish
        before = vendor.requests["result"]
        await clock.advance(1.0)
        await _until(lambda: watcher.in_flight() == 0)
        if vendor.requests["result"] > before:
            tries_at.append(clock() - 1000.0)
    # the pace: never once a second for long; backoff to the 10 s cap, and the breaker's 30 s pauses
    assert len(tries_at) <= 600 / 10 + 10, tries_at
    gaps = [b - a for a, b in itertools.pairwise(tries_at)]
    assert sum(1 for g in gaps if g <= 2) <= 3, gaps
    assert any(g >= 30 for g in gaps), gaps  # the circuit breaker opened on the failing result requests
    # the ending: terminal, completed_with_issues (the vendor said success), result_unavailable, no more tries
    assert 600 <= tries_at[-1] + 30 and tries_at[-1] <= 640
    async with client.get(f"/v1/jobs/{job['id']}", headers=AUTH) as resp:
        ended = await resp.json()
    assert ended["terminal"] and ended["state"] == "completed_with_issues"
    assert [i["code"] for i in ended["issues"]] == ["result_unavailable"] and ended["result_available"]
    async with client.get(f"/v1/jobs/{job['id']}/result", headers=AUTH) as resp:
        result = await resp.json()
        assert resp.status == 200 and result["outputs"] == [] and result["issues"][0]["code"] == "result_unavailable"
    tries = vendor.requests["result"]
    await clock.advance(120.0)
    await _until(lambda: watcher.in_flight() == 0)
    assert vendor.requests["result"] == tries and watcher.watching() == 0
