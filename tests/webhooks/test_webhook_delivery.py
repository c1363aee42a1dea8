"""Webhooks through the real gateway (simulators live): signed, in order, retried until acknowledged."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from gateway.plugins import get_providers
from gateway.server.run import DEMO_WEBHOOK_SECRET
from gateway.webhooks.signing import verify
from support.cases import load_case
from support.waiting import wait_until

CAMB = get_providers()["camb"].sim_prefix


class Receiver:
    """A webhook receiver that fails its first `fail` calls (500, 503, then a dropped connection)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[dict] = []
        self.acked: list[dict] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        call = {
            "event_id": request.headers.get("Gateway-Event-Id"),
            "body": body,
            "valid": verify(DEMO_WEBHOOK_SECRET, body, request.headers.get("Gateway-Signature", "")),
        }
        self.calls.append(call)
        if self.fail > 0:
            self.fail -= 1
            if self.fail == 0:
                request.transport.abort()  # the third failure: the connection drops
                raise asyncio.CancelledError
            return web.Response(status=500 if self.fail == 2 else 503)
        self.acked.append(json.loads(body))
        return web.Response(status=200)


async def _receiver(aiohttp_server, fail=0):
    receiver = Receiver(fail)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return receiver, str(server.make_url("/hook"))


async def test_every_transition_arrives_by_webhook_in_order_signed(new_demo, aiohttp_server):
    receiver, url = await _receiver(aiohttp_server)
    demo = await new_demo()
    job = await demo.submit("camb", load_case("camb").valid_input, webhook_url=url)
    task = job["vendor_ref"]["task_id"]
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    await demo.sim(CAMB, f"/__sim__/jobs/{task}/state", {"status": "SUCCESS", "run_id": 1})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    await wait_until(lambda: len(receiver.acked) == done["version"])
    versions = [e["job"]["version"] for e in receiver.acked]
    assert versions == list(range(1, done["version"] + 1))
    assert all(c["valid"] for c in receiver.calls)
    assert [e["id"] for e in receiver.acked] == [c["event_id"] for c in receiver.calls]
    assert receiver.acked[-1]["type"] == "job.transition" and receiver.acked[-1]["job"]["state"] == "succeeded"
    assert receiver.acked[-1]["job"]["result_available"] is True


async def test_a_receiver_failing_three_times_still_gets_the_event_once(new_demo, aiohttp_server):
    receiver, url = await _receiver(aiohttp_server, fail=3)
    demo = await new_demo(
        webhooks={"allow_networks": ["127.0.0.0/8"], "retry_schedule_s": [0.05, 0.1, 0.2, 0.2]},
    )
    job = await demo.submit("camb", load_case("camb").valid_input, webhook_url=url)
    await wait_until(lambda: len(receiver.acked) >= 1)
    first = receiver.calls[:4]
    assert [c["event_id"] for c in first] == [f"evt_{job['id']}_1"] * 4  # the same id on every try
    assert all(c["valid"] for c in first)
    await asyncio.sleep(0.5)
    ids = [e["id"] for e in receiver.acked]
    assert ids.count(f"evt_{job['id']}_1") == 1  # acknowledged once, never sent again
    _, text, _ = await demo.call("GET", "/metrics", key=None)
    assert 'gateway_webhook_deliveries_total{outcome="failed"} 3' in text.decode()


async def test_loopback_webhooks_are_refused_unless_allowed(new_demo):
    demo = await new_demo(webhooks={"allow_networks": []})
    for url in ("http://127.0.0.1:9/hook", "http://[::1]/h", "http://169.254.169.254/latest", "http://10.0.0.1/"):
        status, body, _ = await demo.call(
            "POST",
            "/v1/jobs",
            json={"provider": "camb", "input": load_case("camb").valid_input, "webhook_url": url},
        )
        assert status == 422 and body["errors"][0]["loc"] == ["body", "webhook_url"], url
