"""Job-level fail-over on routes through HTTP, with the simulators: a routed job whose vendor job fails with a
fail-over error finishes at the route's next provider under the same job id, with consecutive versions, every
attempt recorded and one continuous webhook history; other failures do not fail over; the attempt limit and the
deadline hold; cancel reaches the current attempt's vendor."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from aiohttp import web

from gateway.plugins import get_providers
from gateway.provider import Capabilities
from gateway.server.run import demo_config
from gateway.sim.server import SIMULATORS
from gateway.states import CanonicalStatus, JobError, State
from gateway.tolerant import status_string
from support.cases import load_case
from support.demo import FAST_POLL, Demo
from support.plugins import TinyVendorProvider, registered
from support.receiver import start_receiver
from support.waiting import wait_until

CAMB = get_providers()["camb"].sim_prefix
QA = get_providers()["segment_qa"].sim_prefix
TERMINAL = {s.value for s in State if s.terminal}
_n = itertools.count()
#: the cancellable vendor's per-job keys start with this (a private vendor_ref field)
SECRET = "sk-private-9f1c"


def text() -> dict[str, Any]:
    n = next(_n)
    return {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": [f"Fail over {n}"]}


def routes(**route: Any) -> dict[str, Any]:
    return {"text": {"providers": ["segment_qa", "camb"]}, "r": route}


async def submit(demo: Demo, input: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    status, job, _ = await demo.call("POST", "/v1/jobs", json={"route": "r", "input": input or text(), **extra})
    assert status == 201, job
    return job


async def force(demo: Demo, name: str, job: dict[str, Any], patch: dict[str, Any]) -> None:
    sim_id = load_case(name).sim_job_id(job["vendor_ref"])
    await demo.sim(get_providers()[name].sim_prefix, f"/__sim__/jobs/{sim_id}/state", patch)


async def requests(demo: Demo, prefix: str, what: str) -> int:
    return int((await demo.sim(prefix, "/__sim__/stats"))["requests"].get(what, 0))


async def history(demo: Demo, job_id: str) -> list[dict[str, Any]]:
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job_id}/transitions")
    assert status == 200
    return body["data"]


def assert_continuous(versions: list[dict[str, Any]]) -> None:
    """Versions 1..n in order, and no terminal state but (perhaps) the last."""
    assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
    assert not any(v["state"] in TERMINAL for v in versions[:-1]), versions


async def test_a_vendor_timeout_finishes_at_the_next_provider_under_the_same_job(new_demo, aiohttp_server) -> None:
    receiver = await start_receiver(aiohttp_server)
    hook = receiver.url
    demo = await new_demo(routes=routes(providers=["camb", "segment_qa"]))
    job = await submit(demo, webhook_url=hook)
    assert job["provider"] == "camb" and job["attempts"][0]["outcome"] == "accepted"
    first_ref = job["vendor_ref"]
    running = await demo.wait_for(job["id"], lambda j: j["state"] == "running")
    await force(demo, "camb", job, {"status": "TIMEOUT", "run_id": None})
    moved = await demo.wait_for(job["id"], lambda j: j["provider"] == "segment_qa")
    assert moved["id"] == job["id"] and moved["state"] == "queued" and not moved["terminal"]
    assert moved["version"] == running["version"] + 1 and moved["error"] is None
    first, second = moved["attempts"]
    assert (first["provider"], first["outcome"], first["error"]["code"]) == ("camb", "failed", "timeout")
    assert first["vendor_ref"] == first_ref and first["ended_at"] is not None
    assert (second["provider"], second["outcome"], second["version"]) == ("segment_qa", "accepted", moved["version"])
    assert second["vendor_ref"] == moved["vendor_ref"] != first_ref
    assert await requests(demo, QA, "POST /v1/jobs") == 1  # submitted once

    await force(demo, "segment_qa", moved, {"status": "completed", "cost_eur": 0.02})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "succeeded" and done["provider"] == "segment_qa" and done["result_available"]
    assert [a["outcome"] for a in done["attempts"]] == ["failed", "succeeded"]
    versions = await history(demo, job["id"])
    assert_continuous(versions)
    states = [v["state"] for v in versions]
    assert states[: running["version"]] == ["queued", "running"] and states[-1] == "succeeded"
    assert states[running["version"]] == "queued"  # attempt 2 starts where attempt 1 left off
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 200 and result["provider"] == "segment_qa" and result["outputs"][0]["source"] == "Fail over 0"

    # the webhook receiver sees one continuous history, each version naming the vendor it was at
    await wait_until(lambda: len(receiver.events) == done["version"], what="every version by webhook")
    seen = [e["job"] for e in receiver.events]
    assert_continuous(seen)
    assert [j["provider"] for j in seen] == ["camb"] * running["version"] + ["segment_qa"] * (
        done["version"] - running["version"]
    )
    assert [len(j["attempts"]) for j in seen][: running["version"]] == [1] * running["version"]

    # the ledger has both attempts: camb's failed one, segment-QA's with its cost
    status, report, _ = await demo.call("GET", "/v1/usage")
    groups = {g["key"]: g for g in report["groups"]}
    assert groups["camb"]["attempts"]["failed"] == 1 and sum(groups["camb"]["jobs"].values()) == 0
    assert groups["segment_qa"]["jobs"]["succeeded"] == 1 and groups["segment_qa"]["usage"]["cost"] == {"EUR": 0.02}
    assert report["total"]["attempts"] == 2 and report["total"]["jobs"]["succeeded"] == 1


async def test_segment_qa_retries_exhausted_fail_over_to_camb(new_demo) -> None:
    demo = await new_demo(routes=routes(providers=["segment_qa", "camb"]))
    job = await submit(demo)
    await force(demo, "segment_qa", job, {"status": "dead", "current_step": None, "error_log": ["gave up"]})
    moved = await demo.wait_for(job["id"], lambda j: j["provider"] == "camb")
    assert moved["attempts"][0]["error"]["code"] == "retries_exhausted"
    await force(demo, "camb", moved, {"status": "SUCCESS", "run_id": None})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "succeeded"
    assert_continuous(await history(demo, job["id"]))


async def test_a_vendor_job_lost_fails_over(new_demo, sim_server) -> None:
    demo = await new_demo(routes=routes(providers=["camb", "segment_qa"]))
    job = await submit(demo)
    await demo.wait_for(job["id"], lambda j: j["state"] == "running")
    # CAMB forgets the task (as after a purge): its status answers 404 from now on
    del sim_server.app[SIMULATORS]["camb"].jobs[load_case("camb").sim_job_id(job["vendor_ref"])]
    moved = await demo.wait_for(job["id"], lambda j: j["provider"] == "segment_qa")
    assert moved["attempts"][0]["error"]["code"] == "vendor_job_lost" and moved["state"] == "queued"


@pytest.mark.parametrize(
    ("patch", "code", "options"),
    [
        ({"status": "ERROR", "run_id": None}, "vendor_error", {}),  # the vendor judged the job: never by default
        ({"status": "PAYMENT_REQUIRED"}, "payment_required", {"failover_on": ["timeout"]}),  # the route says so
    ],
)
async def test_a_failure_not_in_the_routes_failover_codes_does_not_fail_over(new_demo, patch, code, options) -> None:
    demo = await new_demo(routes=routes(providers=["camb", "segment_qa"], **options))
    job = await submit(demo)
    await force(demo, "camb", job, patch)
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "failed" and done["error"]["code"] == code and done["provider"] == "camb"
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("camb", "failed")]
    assert done["attempts"][0]["error"]["code"] == code
    assert await requests(demo, QA, "POST /v1/jobs") == 0  # no fail-over submit


async def test_the_attempt_limit_holds(new_demo) -> None:
    demo = await new_demo(routes=routes(providers=["camb", "segment_qa"], max_attempts=1))
    job = await submit(demo)
    await force(demo, "camb", job, {"status": "TIMEOUT", "run_id": None})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "failed" and done["error"]["code"] == "timeout" and len(done["attempts"]) == 1
    assert await requests(demo, QA, "POST /v1/jobs") == 0
    # refused submits count as attempts: segment-QA refuses, camb takes it, and no third attempt is left
    demo2 = await new_demo(routes=routes(providers=["segment_qa", "camb", "segment_qa"], max_attempts=2))
    await demo2.sim(QA, "/__sim__/faults", {"fault": "http_503", "count": 1})
    job = await submit(demo2)
    assert [a["outcome"] for a in job["attempts"]] == ["upstream_error", "accepted"]
    await force(demo2, "camb", job, {"status": "TIMEOUT", "run_id": None})
    done = await demo2.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "failed" and [a["outcome"] for a in done["attempts"]] == ["upstream_error", "failed"]


async def test_a_refused_resubmission_ends_the_job_with_every_attempt(new_demo) -> None:
    demo = await new_demo(routes=routes(providers=["camb", "segment_qa"]))
    job = await submit(demo)
    await demo.sim(QA, "/__sim__/faults", {"fault": "http_500", "count": 1})
    await force(demo, "camb", job, {"status": "TIMEOUT", "run_id": None})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "failed" and done["error"]["code"] == "timeout" and done["provider"] == "camb"
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [
        ("camb", "failed"),
        ("segment_qa", "upstream_error"),
    ]
    assert_continuous(await history(demo, job["id"]))


class CancellableProvider(TinyVendorProvider):
    """A provider whose vendor can cancel (none of the four vendors documents a cancel endpoint)."""

    name = "cancel_test"
    display_name = "Cancellable (test)"
    capabilities = Capabilities(cancel=True, input_kinds=["native", "text"])
    mapping = {"open": State.RUNNING, "stopped": State.CANCELLED, "done": State.SUCCEEDED, "timed_out": State.FAILED}
    #: the vendor's per-job key: kept for the provider, never shown
    private_ref_fields = frozenset({"key"})

    def normalize(self, body: Any) -> CanonicalStatus:
        status = status_string(body)
        error = JobError(code="timeout", message="the vendor gave up") if status == "timed_out" else None
        return CanonicalStatus(state=self.mapping.get(status or "", State.UNKNOWN), vendor_status=status, error=error)

    async def submit(self, conn, input):
        _, body = await conn.request_json("POST", "/jobs", json_body={})
        return {"id": body["id"], "key": body["key"]}


class CancellableVendor:
    def __init__(self) -> None:
        self.jobs: dict[str, str] = {}
        self.cancelled: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.post("/jobs", self.create),
                web.get("/jobs/{id}", self.status),
                web.post("/jobs/{id}/cancel", self.stop),
            ]
        )
        return app

    async def create(self, request: web.Request) -> web.Response:
        job_id = f"c{len(self.jobs) + 1}"
        self.jobs[job_id] = "open"
        return web.json_response({"id": job_id, "key": f"{SECRET}-{job_id}"})

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"status": self.jobs[request.match_info["id"]]})

    async def stop(self, request: web.Request) -> web.Response:
        self.cancelled.append(request.match_info["id"])
        self.jobs[request.match_info["id"]] = "stopped"
        return web.json_response({}, status=202)


@pytest.fixture
async def cancellable(aiohttp_server, sim_server):
    """The demo's providers plus `cancel_test` (a cancellable vendor on loopback): (providers config, vendor)."""
    vendor = CancellableVendor()
    server = await aiohttp_server(vendor.app(), host="127.0.0.1")
    providers = demo_config(str(sim_server.make_url("")).rstrip("/"), poll=FAST_POLL)["providers"]
    providers["cancel_test"] = {"base_url": str(server.make_url("")).rstrip("/"), "poll": FAST_POLL}
    with registered(CancellableProvider(), name="cancel-test-failover"):
        yield providers, vendor


async def test_cancel_applies_to_the_current_attempt(new_demo, cancellable) -> None:
    providers, vendor = cancellable
    demo = await new_demo(providers=providers, routes=routes(providers=["camb", "cancel_test"]))
    job = await submit(demo)
    await force(demo, "camb", job, {"status": "TIMEOUT", "run_id": None})
    moved = await demo.wait_for(job["id"], lambda j: j["provider"] == "cancel_test" and j["state"] == "running")
    status, cancelled, _ = await demo.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 202 and cancelled["state"] == "cancelled" and vendor.cancelled == [moved["vendor_ref"]["id"]]
    assert [(a["provider"], a["outcome"]) for a in cancelled["attempts"]] == [
        ("camb", "failed"),
        ("cancel_test", "cancelled"),
    ]


async def test_a_job_past_its_deadline_fails_and_is_cancelled_at_its_vendor(new_demo, cancellable) -> None:
    providers, vendor = cancellable
    demo = await new_demo(providers=providers, routes=routes(providers=["cancel_test", "camb"], deadline_s=0.5))
    job = await submit(demo)
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "failed" and done["error"]["code"] == "deadline_exceeded"
    assert vendor.cancelled == [job["vendor_ref"]["id"]]
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("cancel_test", "failed")]
    assert_continuous(await history(demo, job["id"]))
    # and no other vendor of the route was tried
    assert await requests(demo, CAMB, "POST /translate") == 0


async def test_attempts_never_carry_private_vendor_ref_fields(new_demo, cancellable, aiohttp_server) -> None:
    providers, vendor = cancellable
    receiver = await start_receiver(aiohttp_server)
    demo = await new_demo(providers=providers, routes=routes(providers=["cancel_test", "camb"]))
    job = await submit(demo, webhook_url=receiver.url)
    assert job["vendor_ref"] == {"id": "c1"}
    await demo.wait_for(job["id"], lambda j: j["state"] == "running")
    vendor.jobs["c1"] = "timed_out"
    moved = await demo.wait_for(job["id"], lambda j: j["provider"] == "camb")
    assert moved["attempts"][0]["vendor_ref"] == {"id": "c1"} and moved["attempts"][0]["error"]["code"] == "timeout"
    await force(demo, "camb", moved, {"status": "SUCCESS", "run_id": None})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    await wait_until(lambda: len(receiver.events) == done["version"], what="every version by webhook")
    seen = [json.dumps(done), json.dumps(receiver.events)]
    for path in (f"/v1/jobs/{job['id']}", f"/v1/jobs/{job['id']}/transitions", "/v1/jobs", "/v1/usage"):
        seen.append(json.dumps((await demo.call("GET", path))[1]))
    seen.append((await demo.call("GET", "/metrics", key=None))[1].decode())
    assert not [text for text in seen if SECRET in text]
