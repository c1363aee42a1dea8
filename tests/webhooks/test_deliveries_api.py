"""The delivery log and replay API through HTTP with a real receiver: replay from a version re-sends in order,
bad requests get clear answers, and every new route keeps tenants apart (404 exactly like an unknown id)."""

from __future__ import annotations

import pytest

from gateway.plugins import get_providers
from support.cases import load_case
from support.demo import KEY_B
from support.waiting import wait_until

CAMB = get_providers()["camb"].sim_prefix


@pytest.fixture
async def demo(new_demo):
    return await new_demo()  # the demo config: loopback receivers, real time


async def _finished_job(demo, receiver) -> dict:
    """A camb job run to success, every one of its events acknowledged by `receiver`."""
    job = await demo.submit("camb", load_case("camb").valid_input, webhook_url=receiver.url)
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    await demo.sim(CAMB, f"/__sim__/jobs/{job['vendor_ref']['task_id']}/state", {"status": "SUCCESS", "run_id": 1})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    await wait_until(lambda: len(receiver.calls) == done["version"])
    return done


async def test_replay_from_a_version_resends_those_events_in_order_with_their_ids(demo, receiver_at):
    receiver = await receiver_at()
    done = await _finished_job(demo, receiver)
    assert receiver.versions() == list(range(1, done["version"] + 1))
    first_ids = receiver.ids()

    status, body, _ = await demo.call("POST", f"/v1/jobs/{done['id']}/deliveries/replay", json={"from_version": 2})
    assert status == 202, body
    assert [e["version"] for e in body["data"]] == list(range(2, done["version"] + 1))
    await wait_until(lambda: len(receiver.calls) == 2 * done["version"] - 1)
    again = receiver.calls[done["version"] :]
    assert [c.event["job"]["version"] for c in again] == list(range(2, done["version"] + 1))  # in order
    assert [c.headers["webhook-id"] for c in again] == first_ids[1:]  # the same ids: receivers deduplicate
    for replayed, original in zip(again, receiver.calls[1 : done["version"]], strict=True):  # the same versions
        fields = ("version", "state", "vendor_status", "updated_at", "result_available")
        assert {k: replayed.event["job"][k] for k in fields} == {k: original.event["job"][k] for k in fields}

    async def settled() -> dict | None:
        _, log, _ = await demo.call("GET", f"/v1/jobs/{done['id']}/deliveries")
        return log if all(e["state"] == "delivered" for e in log["data"]) else None

    log = await wait_until(settled)
    assert log["webhook_url"] == receiver.url and log["endpoint"]["disabled"] is False
    assert [len(e["attempts"]) for e in log["data"]] == [1] + [2] * (done["version"] - 1)


async def test_replay_refuses_what_it_cannot_do(demo, receiver_at):
    receiver = await receiver_at()
    job = await demo.submit("camb", load_case("camb").valid_input, webhook_url=receiver.url)
    path = f"/v1/jobs/{job['id']}/deliveries/replay"
    status, body, _ = await demo.call("POST", path, json={"from_version": 99})
    assert status == 422 and body["errors"] == [
        {"loc": ["body", "from_version"], "msg": f"must be at most the job's version ({job['version']})"}
    ]
    for bad in ({"from_version": 0}, {"from_version": "1"}, {"from": 1}, []):
        status, body, _ = await demo.call("POST", path, json=bad)
        assert status == 422 and body["code"] == "validation_error", bad
    quiet = await demo.submit("camb", load_case("camb").valid_input)  # no webhook_url
    status, body, _ = await demo.call("POST", f"/v1/jobs/{quiet['id']}/deliveries/replay", json={})
    assert status == 409 and body["code"] == "no_webhook"
    status, body, _ = await demo.call("GET", f"/v1/jobs/{quiet['id']}/deliveries")
    assert status == 200 and body == {"webhook_url": None, "endpoint": None, "data": []}
    status, body, _ = await demo.call("POST", "/v1/deliveries/not-an-event/retry")
    assert status == 404


async def test_every_new_route_answers_another_tenants_ids_exactly_like_unknown_ones(demo, receiver_at):
    receiver = await receiver_at()
    job = await demo.submit("camb", load_case("camb").valid_input, webhook_url=receiver.url)  # tenant A's
    await wait_until(lambda: receiver.calls)
    event = f"evt_{job['id']}_1"
    unknown_job = "job_" + "0" * 24
    cases = [
        ("GET", "/v1/jobs/{}/deliveries", None),
        ("POST", "/v1/jobs/{}/deliveries/replay", {"from_version": 1}),
    ]
    for method, template, payload in cases:
        theirs = await demo.call(method, template.format(job["id"]), key=KEY_B, json=payload)
        unknown = await demo.call(method, template.format(unknown_job), key=KEY_B, json=payload)
        assert theirs[0] == unknown[0] == 404
        assert _without_instance(theirs[1]) == _without_instance(unknown[1])
        assert job["id"] not in str(_without_instance(theirs[1]))
    theirs = await demo.call("POST", f"/v1/deliveries/{event}/retry", key=KEY_B)
    unknown = await demo.call("POST", f"/v1/deliveries/evt_{unknown_job}_1/retry", key=KEY_B)
    assert theirs[0] == unknown[0] == 404 and _without_instance(theirs[1]) == _without_instance(unknown[1])
    assert receiver.ids().count(event) == 1  # nothing was re-sent for tenant B
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/deliveries")  # tenant A sees its own
    assert status == 200 and body["data"][0]["id"] == event
    status, _, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/deliveries", key=None)
    assert status == 401


def _without_instance(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k != "instance"}
