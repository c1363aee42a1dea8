"""A job's answer carries a weak ETag of its snapshot; a poller sending it back in If-None-Match gets 304 without a
body while nothing changed, and the full Job once something did. The OpenAPI document states both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.plugins import get_providers
from gateway.render import JobView, dumps, job_body
from gateway.server.keys import GATEWAY
from gateway.states import CanonicalStatus, State
from gateway.store.records import JobRecord
from support.cases import load_case

CAMB = get_providers()["camb"].sim_prefix


async def test_if_none_match_answers_304_until_the_job_changes(new_demo):
    demo = await new_demo(poll={"initial_s": 600, "max_s": 600})
    watcher = demo.app[GATEWAY].watcher
    job = await demo.submit("camb", load_case("camb").valid_input)
    await watcher.poll_now(job["id"])  # queued -> running; no other poll for 10 minutes
    status, body, headers = await demo.call("GET", f"/v1/jobs/{job['id']}")
    etag = headers["ETag"]
    assert status == 200 and etag.startswith('W/"') and headers["Cache-Control"] == "private, no-cache"

    for sent in (etag, etag.removeprefix("W/"), f'"other", {etag}', "*"):
        async with demo.client.get(f"/v1/jobs/{job['id']}", headers=demo.headers(**{"If-None-Match": sent})) as resp:
            assert resp.status == 304, sent
            assert await resp.read() == b"" and resp.headers["ETag"] == etag
    status, other, _ = await demo.call("GET", f"/v1/jobs/{job['id']}", headers={"If-None-Match": '"nope"'})
    assert status == 200 and other["id"] == job["id"]

    await demo.sim(CAMB, f"/__sim__/jobs/{job['vendor_ref']['task_id']}/state", {"status": "SUCCESS", "run_id": 3})
    await watcher.poll_now(job["id"])
    status, body, headers = await demo.call("GET", f"/v1/jobs/{job['id']}", headers={"If-None-Match": etag})
    assert status == 200 and body["state"] == "succeeded" and headers["ETag"] != etag


async def test_another_tenant_gets_404_whatever_it_sends(demo):
    job = await demo.submit("camb", load_case("camb").valid_input)
    _, _, headers = await demo.call("GET", f"/v1/jobs/{job['id']}")
    status, body, _ = await demo.call(
        "GET", f"/v1/jobs/{job['id']}", key="demo-key-b", headers={"If-None-Match": headers["ETag"]}
    )
    assert status == 404 and body["code"] == "not_found"


async def test_the_openapi_document_declares_if_none_match_and_304(demo):
    _, doc, _ = await demo.call("GET", "/openapi.json", key=None)
    get = doc["paths"]["/v1/jobs/{job_id}"]["get"]
    assert any(p["name"] == "If-None-Match" and p["in"] == "header" for p in get["parameters"])
    assert "content" not in get["responses"]["304"] and "ETag" in get["responses"]["304"]["headers"]
    assert "ETag" in get["responses"]["200"]["headers"]


async def test_the_cached_body_is_the_rendered_job(demo):
    """The bytes served from the per-snapshot cache are exactly the Job the renderer makes."""
    job = await demo.submit("camb", load_case("camb").valid_input)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
    gateway = demo.app[GATEWAY]
    record = await gateway.job(job["id"])
    expected = gateway.body(record)
    assert status == 200 and set(body) == set(expected)
    assert {k: v for k, v in body.items() if k != "poll_after_s"} == {
        k: v for k, v in expected.items() if k != "poll_after_s"
    }


def test_a_view_is_byte_for_byte_the_rendered_job_with_poll_after_and_eta():
    """JobView splices the two time-dependent fields into bytes rendered once: the result is exactly what
    render.job_body gives at that moment, with and without an estimate, running and finished."""
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    base = JobRecord(
        id="job_" + "a" * 24,
        tenant="t",
        provider="camb",
        vendor_ref={"task_id": "x"},
        status=CanonicalStatus(state=State.RUNNING, vendor_status="PENDING", eta_s=30),
        created_at=now,
        updated_at=now,
        checked_at=now,
        metadata={"k": ["v", 1.5, None]},
    )
    estimated = base.model_copy(update={"estimated_finish_at": now + timedelta(seconds=30)})
    finished = base.model_copy(update={"status": CanonicalStatus(state=State.SUCCEEDED)})
    for job in (base, estimated, finished):
        for poll_after in (None, 2.5, 0.05):
            later = now + timedelta(seconds=7.25)
            view = JobView(job)
            assert view.body(poll_after, lambda later=later: later) == dumps(job_body(job, poll_after, later))
    assert JobView(base).etag == JobView(base.model_copy()).etag != JobView(estimated).etag


async def test_a_read_from_memory_answers_as_the_handler_does(demo):
    """A plain read of a job this process holds is answered from memory (`Operation.quick`, no coroutine); a read
    with a query goes through the handler. Both give the same Job and ETag and check the parameters alike."""
    job = await demo.submit("camb", load_case("camb").valid_input)
    path = f"/v1/jobs/{job['id']}"
    assert demo.app[GATEWAY].watcher.held(job["id"]) is not None  # held in memory: the quick answer applies
    status, quick, headers = await demo.call("GET", path)
    status_b, handled, headers_b = await demo.call("GET", path + "?wait=0")
    assert status == status_b == 200 and headers["ETag"] == headers_b["ETag"]
    assert {k: v for k, v in quick.items() if k != "poll_after_s"} == {
        k: v for k, v in handled.items() if k != "poll_after_s"
    }
    for target in (path, path + "?wait=0"):
        status, body, _ = await demo.call("GET", target, headers={"If-None-Match": "x" * 3000})
        assert status == 422 and body["errors"][0]["loc"] == ["header", "If-None-Match"], body
        status, body, _ = await demo.call("GET", target, key="demo-key-b")
        assert status == 404 and body["code"] == "not_found"
