"""The webhook dispatcher on a real SQLite outbox: signed, retried until acknowledged, in order per job, durable."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.config import WebhookConfig
from gateway.metrics import Metrics
from gateway.models import Job
from gateway.states import CanonicalStatus, State
from gateway.store.records import JobRecord, OutboxEvent
from gateway.store.sqlite import SqliteStore
from gateway.testing.clock import FakeClock
from gateway.webhooks.dispatcher import NO_SECRET_MESSAGE, WebhookDispatcher
from gateway.webhooks.signing import verify
from support.ports import refused_port
from support.waiting import wait_until

SECRET = "whsec-Sup3r-s3cret-value-42"
LOOPBACK = ["127.0.0.0/8", "::1/128"]
#: tiny delays between tries; a generous timeout so that a loaded machine does not turn an answer into a timeout
FAST = WebhookConfig(allow_networks=LOOPBACK, retry_schedule_s=[0.01] * 30, timeout_s=2.0)
#: for the try that times out on purpose
SHORT_TIMEOUT = FAST.model_copy(update={"timeout_s": 0.5})
#: the "timeout" behaviour answers this late (well past SHORT_TIMEOUT)
LATE_S = 1.5
FAR = timedelta(days=1)


async def add_job(store: SqliteStore, job_id: str, url: str, *, versions: int = 1, tenant: str = "acme") -> None:
    """A job with a webhook URL and `versions` transitions: the store queues one event per version."""
    now = datetime.now(UTC)
    record = JobRecord(
        id=job_id,
        tenant=tenant,
        provider="camb",
        status=CanonicalStatus(state=State.QUEUED),
        created_at=now,
        updated_at=now,
        webhook_url=url,
    )
    await store.create_job(record)
    for version in range(2, versions + 1):
        status = CanonicalStatus(state=State.RUNNING, progress=10 * version)
        _, moved = await store.record_status(job_id, status, checked_at=now)
        assert moved


async def pending(store: SqliteStore) -> list[OutboxEvent]:
    """Each job's earliest undelivered event, whenever due."""
    return await store.due_events(datetime.now(UTC) + FAR, 1000)


class Receiver:
    """A webhook endpoint; `script[event id]` lists how it answers that event's first tries, then 200.

    Behaviours: "500"/"503" (that status), "timeout" (answers too late), "reset" (drops the connection).
    `down` makes every try fail with 500.
    """

    def __init__(self, secret: str = SECRET, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.script: dict[str, list[str]] = {}
        self.down = False
        self.calls: list[dict[str, Any]] = []
        self.acked: list[dict[str, Any]] = []
        self.url = ""
        self._active: Counter[str] = Counter()
        self.max_active_per_job = 0
        self.active = 0
        self.max_active = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        event = json.loads(body)
        job = event["job"]["id"]
        behaviour = "500" if self.down else (self.script.get(event["id"]) or ["ok"]).pop(0)
        self.calls.append(
            {
                "event_id": request.headers.get("Gateway-Event-Id"),
                "id": event["id"],
                "job": job,
                "version": event["job"]["version"],
                "behaviour": behaviour,
                "body": body,
                "event": event,
                "headers": dict(request.headers),
                "at": time.monotonic(),
                "valid": verify(self.secret, body, request.headers.get("Gateway-Signature", "")),
            }
        )
        if behaviour == "timeout":
            await asyncio.sleep(LATE_S)  # the dispatcher has given up by then
            return web.Response(status=200)
        self._active[job] += 1
        self.active += 1
        self.max_active_per_job = max(self.max_active_per_job, self._active[job])
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if behaviour == "reset":
                assert request.transport is not None
                request.transport.abort()
                raise ConnectionResetError("dropped by the test receiver")
            if behaviour != "ok":
                return web.Response(status=int(behaviour), text="nope")
            self.acked.append(event)
            return web.Response(status=204)
        finally:
            self._active[job] -= 1
            self.active -= 1

    def versions(self, job: str, *, acked: bool = True) -> list[int]:
        return (
            [e["job"]["version"] for e in self.acked if e["job"]["id"] == job]
            if acked
            else [c["version"] for c in self.calls if c["job"] == job]
        )


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "gateway.db", state_dir=tmp_path)
    await store.open()
    yield store
    await store.close()


async def _serve(aiohttp_server, receiver: Receiver) -> Receiver:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    receiver.url = str(server.make_url("/hook"))
    return receiver


@pytest.fixture
async def receiver(aiohttp_server):
    return await _serve(aiohttp_server, Receiver())


@pytest.fixture
async def dispatcher_for():
    started: list[WebhookDispatcher] = []

    async def make(store, *, secrets: dict[str, str] | None = None, settings: WebhookConfig = FAST, **kwargs):
        secrets = {"acme": SECRET} if secrets is None else secrets

        def secrets_for(tenant: str, now: datetime) -> list[str]:
            return [secrets[tenant]] if tenant in secrets else []

        dispatcher = WebhookDispatcher(store, secrets_for, settings, Metrics(), **kwargs)
        await dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in started:
        await dispatcher.stop()


def assert_in_order(receiver: Receiver, job: str) -> None:
    """Every try of a job's events is of its next unacknowledged version: never N+1 before N is acknowledged."""
    acknowledged = 0
    for call in (c for c in receiver.calls if c["job"] == job):
        assert call["version"] == acknowledged + 1, receiver.versions(job, acked=False)
        if call["behaviour"] == "ok":
            acknowledged += 1


@pytest.mark.parametrize("failures", [["500", "500", "timeout"], ["500", "503", "reset"]], ids=["timeout", "reset"])
async def test_a_receiver_failing_three_times_still_gets_the_event_acknowledged_once(
    store, receiver, dispatcher_for, failures
):
    await add_job(store, "job_a", receiver.url)
    receiver.script["evt_job_a_1"] = list(failures)
    dispatcher = await dispatcher_for(store, settings=SHORT_TIMEOUT)

    await wait_until(lambda: receiver.acked)
    await asyncio.sleep(0.15)  # time for any (wrong) further try
    assert [c["behaviour"] for c in receiver.calls] == [*failures, "ok"]
    assert [c["event_id"] for c in receiver.calls] == ["evt_job_a_1"] * 4  # the same id on every try
    assert [c["id"] for c in receiver.calls] == ["evt_job_a_1"] * 4
    assert all(c["valid"] for c in receiver.calls)  # each try signed (afresh) with the tenant's secret
    assert len(receiver.acked) == 1
    assert len({c["body"] for c in receiver.calls}) == 1  # the same body every time
    headers = receiver.calls[-1]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("translation-gateway/")
    acked = receiver.acked[0]
    assert (acked["id"], acked["type"]) == ("evt_job_a_1", "job.transition")
    # the body is the public Job at the event's version, rendered when sent
    assert Job.model_validate(acked["job"]).model_dump(mode="json", by_alias=True) == acked["job"]
    assert {k: acked["job"][k] for k in ("id", "version", "state", "progress", "terminal")} == {
        "id": "job_a",
        "version": 1,
        "state": "queued",
        "progress": None,
        "terminal": False,
    }
    assert dispatcher.metrics.webhooks.get(outcome="failed") == 3
    assert dispatcher.metrics.webhooks.get(outcome="delivered") == 1
    assert await store.pending_event_count() == 0


async def test_events_of_one_job_go_in_order_even_when_an_earlier_one_fails(store, receiver, dispatcher_for):
    await add_job(store, "job_a", receiver.url, versions=3)
    await add_job(store, "job_b", receiver.url, versions=2)
    receiver.script["evt_job_a_1"] = ["500", "500", "500", "500"]
    receiver.script["evt_job_a_2"] = ["503"]
    # job_a's first event is acknowledged no sooner than 0.05 + 0.1 * 3 s: ample time for job_b's two
    await dispatcher_for(store, settings=FAST.model_copy(update={"retry_schedule_s": [0.05, 0.1, 0.1, 0.1, 0.1]}))

    await wait_until(lambda: len(receiver.acked) == 5)
    assert receiver.versions("job_a") == [1, 2, 3]
    assert receiver.versions("job_b") == [1, 2]
    assert receiver.versions("job_a", acked=False) == [1, 1, 1, 1, 1, 2, 2, 3]
    assert_in_order(receiver, "job_a")
    assert_in_order(receiver, "job_b")
    # another job is not held back by job_a's failing event
    order = [(e["job"]["id"], e["job"]["version"]) for e in receiver.acked]
    assert order.index(("job_b", 2)) < order.index(("job_a", 1))
    assert receiver.max_active_per_job == 1


async def test_many_jobs_concurrently_each_in_order_and_bounded(store, aiohttp_server, dispatcher_for):
    receiver = await _serve(aiohttp_server, Receiver(delay=0.02))
    jobs = [f"job_{n}" for n in range(8)]
    for n, job in enumerate(jobs):
        await add_job(store, job, receiver.url, versions=3)
        if n % 2 == 0:
            for version in (1, 2, 3):
                receiver.script[f"evt_{job}_{version}"] = ["500"]
    await dispatcher_for(store, concurrency=4)

    await wait_until(lambda: len(receiver.acked) == 24)
    for job in jobs:
        assert receiver.versions(job) == [1, 2, 3]
        assert_in_order(receiver, job)
    assert receiver.max_active_per_job == 1
    assert 2 <= receiver.max_active <= 4  # concurrent across jobs, never more than the bound


async def test_undelivered_events_survive_a_restart(tmp_path, receiver, dispatcher_for):
    path = tmp_path / "gateway.db"
    receiver.down = True
    first = SqliteStore(path, state_dir=tmp_path)
    await first.open()
    await add_job(first, "job_a", receiver.url, versions=2)
    dispatcher = await dispatcher_for(first)
    await wait_until(lambda: len(receiver.calls) >= 2)
    await dispatcher.stop()
    await first.close()
    tried_before = len(receiver.calls)
    assert {c["event_id"] for c in receiver.calls} == {"evt_job_a_1"}

    receiver.down = False
    second = SqliteStore(path, state_dir=tmp_path)
    await second.open()
    try:
        assert await second.pending_event_count() == 2
        [head] = await pending(second)
        assert head.id == "evt_job_a_1" and head.attempts >= 2 and head.last_error == "receiver answered HTTP 500"
        [log, _] = await second.job_deliveries("job_a")
        assert len(log.attempts) == head.attempts and {a.status for a in log.attempts} == {500}
        await dispatcher_for(second)
        await wait_until(lambda: len(receiver.acked) == 2)
        assert receiver.versions("job_a") == [1, 2]
        assert [c["event_id"] for c in receiver.calls[tried_before:]] == ["evt_job_a_1", "evt_job_a_2"]
        assert_in_order(receiver, "job_a")
        await wait_until(lambda: _no_pending(second))
    finally:
        await second.close()


async def _no_pending(store: SqliteStore) -> bool:
    return await store.pending_event_count() == 0


async def test_the_secret_never_appears_in_last_error_or_logs(store, receiver, dispatcher_for, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.down = True
    with refused_port() as refused, refused_port() as leaky:
        await add_job(store, "job_down", receiver.url)
        await add_job(store, "job_refused", f"http://127.0.0.1:{refused}/hook")
        await add_job(store, "job_leaky", f"http://127.0.0.1:{leaky}/{SECRET}")  # even a URL naming it
        dispatcher = await dispatcher_for(store)

        async def tried_twice_each() -> bool:
            return all(e.attempts >= 2 for e in await pending(store)) and len(await pending(store)) == 3

        await wait_until(tried_twice_each)
        await dispatcher.stop()
    errors = {e.job_id: e.last_error for e in await pending(store)}
    assert errors["job_down"] == "receiver answered HTTP 500"
    assert errors["job_refused"] == "could not connect (ClientConnectorError)"  # no address, no detail
    assert all(errors.values()) and not any(SECRET in error for error in errors.values())
    assert all(c["valid"] for c in receiver.calls)  # the secret was in use all along
    assert caplog.records and SECRET not in caplog.text
    assert dispatcher.metrics.webhooks.get(outcome="failed") >= 6


async def test_a_tenant_without_a_secret_is_never_sent_unsigned(store, receiver, dispatcher_for, caplog):
    caplog.set_level(logging.INFO, logger="gateway.webhooks")
    secrets: dict[str, str] = {}
    await add_job(store, "job_a", receiver.url, tenant="acme")
    dispatcher = await dispatcher_for(store, secrets=secrets)

    async def held() -> bool:
        return (await pending(store))[0].attempts >= 3

    await wait_until(held)
    [event] = await pending(store)
    assert event.last_error == NO_SECRET_MESSAGE
    [log] = await store.job_deliveries("job_a")
    assert {(a.error, a.status) for a in log.attempts} == {("no_secret", None)}
    assert receiver.calls == []
    assert dispatcher.metrics.webhooks.get(outcome="refused") >= 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "acme" in warnings[0].getMessage() and "no webhook secret" in warnings[0].getMessage()

    secrets["acme"] = SECRET  # the operator sets it: the held event goes out, signed
    dispatcher.wake()
    await wait_until(lambda: receiver.acked)
    assert receiver.calls[0]["valid"] and receiver.calls[0]["event_id"] == "evt_job_a_1"


@pytest.mark.parametrize("own_session", [True, False], ids=["guarded-session", "given-session"])
async def test_private_targets_are_refused_at_delivery_unless_allowed(store, receiver, dispatcher_for, own_session):
    settings = FAST.model_copy(update={"allow_networks": []})
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    await add_job(store, "job_literal", receiver.url)  # http://127.0.0.1:<port>/hook
    await add_job(store, "job_name", f"http://localhost:{port}/hook")  # resolves to loopback
    session = None if own_session else aiohttp.ClientSession()
    try:
        dispatcher = await dispatcher_for(store, settings=settings, session=session)

        async def refused_twice_each() -> bool:
            events = await pending(store)
            return len(events) == 2 and all(e.attempts >= 2 for e in events)

        await wait_until(refused_twice_each)
        await dispatcher.stop()
        for event in await pending(store):
            assert event.last_error and event.last_error.startswith("webhook URL refused"), event.last_error
            assert "a loopback address, which is not in webhooks.allow_networks" in event.last_error
            assert "loopback" in event.last_error
        assert receiver.calls == []
        assert dispatcher.metrics.webhooks.get(outcome="refused") >= 4
        assert dispatcher.metrics.webhooks.get(outcome="failed") == 0
    finally:
        if session is not None:
            await session.close()


async def test_wake_delivers_at_once_when_idle(store, receiver, dispatcher_for):
    dispatcher = await dispatcher_for(store)
    await asyncio.sleep(0.05)  # the loop found nothing and sleeps
    await add_job(store, "job_a", receiver.url, versions=2)
    started = time.monotonic()
    dispatcher.wake()
    await wait_until(lambda: len(receiver.acked) == 2, within=3.0)
    assert time.monotonic() - started < 2.5  # not the idle poll (5 s)
    assert receiver.versions("job_a") == [1, 2]


async def test_start_and_stop_are_idempotent(store, receiver):
    dispatcher = WebhookDispatcher(store, lambda tenant, now: [SECRET], FAST, Metrics())
    await dispatcher.stop()  # never started
    await dispatcher.start()
    await dispatcher.start()
    assert dispatcher.running
    await add_job(store, "job_a", receiver.url)
    dispatcher.wake()
    await wait_until(lambda: receiver.acked)
    await dispatcher.stop()
    await dispatcher.stop()
    assert not dispatcher.running


class CountingStore(SqliteStore):
    """Counts the dispatcher's outbox reads."""

    reads = 0

    async def due_events(self, now: datetime, limit: int = 100) -> list[OutboxEvent]:
        self.reads += 1
        return await super().due_events(now, limit)


async def test_the_outbox_is_read_once_per_idle_poll_and_once_per_wake(tmp_path, receiver, dispatcher_for):
    store = CountingStore(tmp_path / "gateway.db", state_dir=tmp_path)
    await store.open()
    try:
        clock = FakeClock(wall=datetime.now(UTC) + timedelta(seconds=1))  # events queued from now on are due
        dispatcher = await dispatcher_for(store, clock=clock, idle_poll_s=30.0)
        await wait_until(lambda: store.reads == 1)  # at start
        await clock.advance(29.0)
        assert store.reads == 1
        await clock.advance(1.0)
        await wait_until(lambda: store.reads == 2)
        for reads in (3, 4, 5):  # one read per idle poll (a replica on PostgreSQL polls once a lease time)
            await clock.advance(30.0)
            await wait_until(lambda n=reads: store.reads == n)
        await add_job(store, "job_a", receiver.url)
        dispatcher.wake()
        await wait_until(lambda: receiver.acked)
        await wait_until(lambda: store.reads == 7)  # the wake, and the finished delivery's look for the next event
        await asyncio.sleep(0.05)
        assert store.reads == 7
    finally:
        await store.close()
