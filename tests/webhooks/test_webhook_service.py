"""The webhook service through HTTP and a real receiver: Standard Webhooks signatures (checked with the
`standardwebhooks` package), secret rotation, the retry schedule to its end on a FakeClock, Retry-After, 410 Gone,
dead letters and the retry API."""

from __future__ import annotations

import base64
import itertools
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.config import DEFAULT_RETRY_SCHEDULE_S
from gateway.server.run import DEMO_WEBHOOK_SECRET, DEMO_WEBHOOK_SECRET_B
from gateway.webhooks.signing import verify, verify_standard
from support.waiting import wait_until

LOOPBACK = {"allow_networks": ["127.0.0.0/8", "::1/128"]}  # and the default (production) schedule
NEW_SECRET = "whsec_" + base64.b64encode(b"the-new-secret-after-the-rotation").decode()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _gaps(entry: dict) -> list[float]:
    times = [_at(a["at"]) for a in entry["attempts"]]
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]


async def test_signatures_verify_with_the_standardwebhooks_package_and_the_legacy_header(hooks_with, receiver_at):
    hooks = await hooks_with()
    receiver = await receiver_at()
    job = await hooks.submit(receiver.url)
    call = (await wait_until(lambda: receiver.calls))[0]

    event = Webhook(DEMO_WEBHOOK_SECRET).verify(call.body, call.headers)  # exactly what a receiver does
    assert event["id"] == call.headers["webhook-id"] == call.headers["Gateway-Event-Id"] == f"evt_{job['id']}_1"
    assert event["type"] == "job.transition" and event["job"]["id"] == job["id"]
    assert call.headers["webhook-timestamp"] == str(int(hooks.clock.now().timestamp()))
    assert call.headers["webhook-signature"].startswith("v1,") and " " not in call.headers["webhook-signature"]
    assert verify(DEMO_WEBHOOK_SECRET, call.body, call.headers["Gateway-Signature"])  # the deprecated header
    with pytest.raises(WebhookVerificationError):  # another tenant's secret does not verify
        Webhook(DEMO_WEBHOOK_SECRET_B).verify(call.body, call.headers)
    assert not verify(DEMO_WEBHOOK_SECRET_B, call.body, call.headers["Gateway-Signature"])
    entry = await hooks.attempts(job["id"], 1)
    assert entry["state"] == "delivered" and entry["attempts"][0]["status"] == 200


async def test_a_rotation_signs_with_both_secrets_during_the_overlap_and_with_the_new_one_after(
    hooks_with, receiver_at
):
    tenants = {
        "demo": {
            "keys": ["demo-key"],
            "webhook_secret": NEW_SECRET,
            "previous_webhook_secret": DEMO_WEBHOOK_SECRET,
            "previous_webhook_secret_until": (datetime.now().astimezone() + timedelta(hours=1)).isoformat(),
        },
        "demo-b": {"keys": ["demo-key-b"], "webhook_secret": DEMO_WEBHOOK_SECRET_B},
    }
    hooks = await hooks_with(tenants=tenants)
    receiver = await receiver_at()
    job = await hooks.submit(receiver.url)
    call = (await wait_until(lambda: receiver.calls))[0]
    assert len(call.headers["webhook-signature"].split(" ")) == 2
    for secret in (DEMO_WEBHOOK_SECRET, NEW_SECRET):  # a receiver not yet moved, and one already moved
        Webhook(secret).verify(call.body, call.headers)
        assert verify(secret, call.body, call.headers["Gateway-Signature"])

    await hooks.clock.advance(2 * 3600)  # past the overlap: the old secret no longer signs
    status, body, _ = await hooks.demo.call("POST", f"/v1/deliveries/evt_{job['id']}_1/retry")
    assert status == 202, body
    after = int(hooks.clock.now().timestamp())
    again = await wait_until(
        lambda: [c for c in receiver.calls[1:] if c.headers["webhook-id"] == call.headers["webhook-id"]]
    )
    now = hooks.clock.now().timestamp()
    signed_after = [c for c in receiver.calls if int(c.headers["webhook-timestamp"]) >= after]
    assert again[0] in signed_after
    for later in signed_after:  # the retried event (and any of the job's next ones)
        assert len(later.headers["webhook-signature"].split(" ")) == 1
        assert verify_standard(NEW_SECRET, later.body, later.headers, now=now)
        assert not verify_standard(DEMO_WEBHOOK_SECRET, later.body, later.headers, now=now)
        assert not verify(DEMO_WEBHOOK_SECRET, later.body, later.headers["Gateway-Signature"], now=now)
    assert again[0].body == call.body


async def test_a_receiver_failing_six_times_gets_the_event_on_the_seventh_try_on_schedule(hooks_with, receiver_at):
    hooks = await hooks_with(webhooks=LOOPBACK)
    receiver = await receiver_at(script=[500] * 6)
    job = await hooks.submit(receiver.url)
    for n in range(1, 7):
        entry = await hooks.attempts(job["id"], n)
        assert entry["state"] == "pending" and entry["next_attempt_at"], entry
        await hooks.advance_to(entry["next_attempt_at"])
    entry = await hooks.attempts(job["id"], 7)

    assert entry["state"] == "delivered" and entry["next_attempt_at"] is None and entry["failure"] is None
    assert [a["status"] for a in entry["attempts"]] == [500] * 6 + [200]
    assert [a["error"] for a in entry["attempts"]] == ["http_status"] * 6 + [None]
    assert [a["number"] for a in entry["attempts"]] == list(range(1, 8))
    assert entry["attempts"][0]["message"] == "receiver answered HTTP 500"
    first = [c for c in receiver.calls if c.event["job"]["version"] == 1]  # (the job moves on meanwhile)
    assert [c.headers["webhook-id"] for c in first] == [f"evt_{job['id']}_1"] * 7  # the same id on every try
    assert len({c.body for c in first}) == 1  # and the same body
    assert receiver.calls[:7] == first  # version 2 waited for version 1
    for gap, nominal in zip(_gaps(entry), DEFAULT_RETRY_SCHEDULE_S, strict=False):  # 5 s, 5 min, ... 10 h
        assert 0.8 * nominal - 0.01 <= gap <= nominal + 0.01, (gap, nominal)
    _, metrics, _ = await hooks.demo.call("GET", "/metrics", key=None)
    assert 'gateway_webhook_deliveries_total{outcome="failed"} 6' in metrics.decode()
    assert 'gateway_webhook_deliveries_total{outcome="delivered"}' in metrics.decode()


async def test_an_event_past_its_horizon_is_dead_lettered_and_then_delivered_by_the_retry_api(hooks_with, receiver_at):
    hooks = await hooks_with(webhooks=LOOPBACK)
    receiver = await receiver_at(then=503)
    job = await hooks.submit(receiver.url)
    tries = len(DEFAULT_RETRY_SCHEDULE_S) + 1
    for n in range(1, tries):
        await hooks.advance_to((await hooks.attempts(job["id"], n))["next_attempt_at"])
    entry = await hooks.attempts(job["id"], tries)
    assert entry["state"] == "failed" and entry["next_attempt_at"] is None
    assert entry["failure"].startswith(f"gave up after {tries} tries (the end of the retry schedule, about 3 days")
    assert entry["failure"].endswith("receiver answered HTTP 503")
    span = sum(_gaps(entry))
    assert 0.8 * sum(DEFAULT_RETRY_SCHEDULE_S) <= span <= sum(DEFAULT_RETRY_SCHEDULE_S) + 0.1  # about 3 days
    await hooks.clock.advance(7 * 86400)
    await hooks.demo.call("GET", "/healthz", key=None)  # a moment of real time for any (wrong) try
    assert receiver.ids().count(entry["id"]) == tries  # a dead letter is never tried again by itself

    # the job's later events (if the demo job moved on meanwhile) go through their schedules too. Once each is
    # dead-lettered, delivered or waiting for a later (fake) time, the metric counts exactly the dead letters.
    async def settled() -> list[dict] | None:
        log = (await hooks.log(job["id"]))["data"]
        waiting = [e for e in log if e["state"] == "pending"]
        if any(not e["next_attempt_at"] or _at(e["next_attempt_at"]) <= hooks.clock.now() for e in waiting):
            return None  # one is due or in flight
        dead = [e for e in log if e["state"] == "failed"]
        _, metrics, _ = await hooks.demo.call("GET", "/metrics", key=None)
        counted = f'gateway_webhook_dead_letters_total{{reason="exhausted"}} {len(dead)}\n' in metrics.decode()
        return dead if counted else None

    dead = await wait_until(settled, what="the job's events settled, the metric counting each dead letter once")
    assert entry["id"] in [e["id"] for e in dead]

    receiver.then = 204
    status, body, _ = await hooks.demo.call("POST", f"/v1/deliveries/{entry['id']}/retry")
    assert status == 202, body
    assert body["id"] == entry["id"] and body["state"] in ("pending", "delivered")
    entry = await hooks.attempts(job["id"], tries + 1)
    assert entry["state"] == "delivered" and entry["attempts"][-1]["status"] == 204
    assert receiver.ids().count(entry["id"]) == tries + 1  # the same id again
    # the dead letter no longer held back the job's later events (they went out meanwhile, once it failed)
    assert receiver.ids()[:tries] == [entry["id"]] * tries


async def test_retry_after_pushes_the_next_try_back_within_its_cap(hooks_with, receiver_at):
    hooks = await hooks_with(webhooks={**LOOPBACK, "max_retry_after_s": 7200})
    receiver = await receiver_at(script=[429, 503], answer_headers={"Retry-After": "3600"})
    job = await hooks.submit(receiver.url)
    entry = await hooks.attempts(job["id"], 1)
    wait = (_at(entry["next_attempt_at"]) - _at(entry["attempts"][0]["at"])).total_seconds()
    assert wait == pytest.approx(3600, abs=1)  # not the schedule's 5 s
    receiver.answer_headers["Retry-After"] = (hooks.clock.now() + timedelta(days=3)).strftime(
        "%a, %d %b %Y %H:%M:%S GMT"
    )  # an HTTP date, far beyond the cap
    await hooks.advance_to(entry["next_attempt_at"])
    entry = await hooks.attempts(job["id"], 2)
    wait = (_at(entry["next_attempt_at"]) - _at(entry["attempts"][1]["at"])).total_seconds()
    assert wait == pytest.approx(7200, abs=1)  # max_retry_after_s
    assert [a["status"] for a in entry["attempts"]] == [429, 503]


async def test_a_410_stops_deliveries_to_the_endpoint_and_the_log_says_why(hooks_with, receiver_at):
    hooks = await hooks_with(webhooks=LOOPBACK)
    receiver = await receiver_at(script=[410])
    first = await hooks.submit(receiver.url)
    entry = await hooks.attempts(first["id"], 1)
    assert entry["state"] == "failed" and entry["attempts"][0]["status"] == 410
    assert entry["attempts"][0]["message"] == "receiver answered HTTP 410 Gone: deliveries to this URL are stopped"
    assert "410 Gone" in entry["failure"] and "retry or replay an event to resume" in entry["failure"]
    log = await hooks.log(first["id"])
    assert log["endpoint"]["disabled"] is True and log["endpoint"]["reason"] == entry["failure"]

    second = await hooks.submit(receiver.url)  # the same tenant, the same URL: not sent
    [later] = (await hooks.log(second["id"]))["data"]
    assert later["state"] == "failed" and later["attempts"] == [] and later["failure"] == entry["failure"]
    await hooks.clock.advance(86400)
    await hooks.demo.call("GET", "/healthz", key=None)
    assert len(receiver.calls) == 1
    other = await hooks.submit(receiver.url, key="demo-key-b")  # another tenant's endpoint is its own
    await wait_until(lambda: len(receiver.calls) >= 2)  # tenant B's event went out (and 200 this time)
    assert receiver.calls[1].event["job"]["id"] == other["id"]
    assert (await hooks.log(other["id"], key="demo-key-b"))["endpoint"]["disabled"] is False

    status, _, _ = await hooks.demo.call("POST", f"/v1/deliveries/{later['id']}/retry")  # re-enables it
    assert status == 202
    assert (await hooks.attempts(second["id"], 1))["state"] == "delivered"
    assert (await hooks.log(second["id"]))["endpoint"]["disabled"] is False


async def test_an_endless_answer_body_is_read_only_a_few_kib_and_does_not_hold_the_try(hooks_with, aiohttp_server):
    """A receiver that acknowledges with 200 and then streams a body forever: the try is delivered, well within
    the per-attempt timeout, and the gateway stops reading (the receiver's writes fail soon)."""
    written = {"bytes": 0, "stopped": False}

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        try:
            while written["bytes"] < 1 << 30:
                await response.write(b"x" * 65536)
                written["bytes"] += 65536
        except ConnectionError:  # the gateway dropped the connection
            pass
        finally:  # (or the handler was cancelled as it went away)
            written["stopped"] = True
        return response

    app = web.Application()
    app.router.add_post("/hook", endless)
    server = await aiohttp_server(app, host="127.0.0.1")
    hooks = await hooks_with(webhooks={**LOOPBACK, "timeout_s": 30})
    job = await hooks.submit(str(server.make_url("/hook")))
    entry = await hooks.attempts(job["id"], 1)
    [attempt] = entry["attempts"]
    assert entry["state"] == "delivered" and attempt["status"] == 200 and attempt["duration_ms"] < 5000
    await wait_until(lambda: written["stopped"], what="the receiver's writes to fail")
    assert written["bytes"] < 64 << 20  # the gateway read 4 KiB and dropped the connection
