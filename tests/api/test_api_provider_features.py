"""The provider interface's second edition through the HTTP API, with the example third-party plugin
(examples/azure_batch, installed by `make test`) served by the demo wiring: a private ref field never shown,
the vendor's estimate, its quota answer, a one-time result that is gone, and cancel."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from importlib.metadata import entry_points

import pytest
from aiohttp import web

from gateway.plugins import get_providers
from gateway.refs import RefSealer
from gateway.sim.server import SIMULATORS
from support.demo import make_demo

NAME = "azure_batch"
TEXT = {"kind": "text", "source_language": "en", "target_language": "de", "texts": ["Hello", "Good bye"]}
pytestmark = pytest.mark.skipif(NAME not in get_providers(), reason="the example plugin is not installed")


def _prefix() -> str:
    return get_providers()[NAME].sim_prefix or ""


def _sim(demo):
    return demo.sim_server.app[SIMULATORS][NAME]


def _key_of(demo, job: dict) -> str:
    """The batch key the vendor gave this job (read from the simulator: the gateway never shows it)."""
    return _sim(demo).jobs[job["vendor_ref"]["batch_id"]].private["key"]


async def _force(demo, job: dict, patch: dict) -> None:
    await demo.sim(_prefix(), f"/__sim__/jobs/{job['vendor_ref']['batch_id']}/state", patch)


async def _fault(demo, kind: str, count: int = 1) -> None:
    await demo.sim(_prefix(), "/__sim__/faults", {"fault": kind, "count": count})


@pytest.fixture
async def demo(aiohttp_client, sim_server, tmp_path):
    d = await make_demo(aiohttp_client, sim_server, tmp_path)
    d.sim_server = sim_server
    yield d
    await d.session.close()


def test_the_example_plugin_is_installed_through_its_entry_point():
    found = {ep.name: ep.value for ep in entry_points(group="gateway.providers")}
    assert found[NAME] == "gateway_azure_batch.plugin"
    assert type(get_providers()[NAME]).__module__ == "gateway_azure_batch.client"


async def test_a_batch_is_served_end_to_end(demo):
    job = await demo.submit(NAME, TEXT)
    assert job["provider"] == NAME and set(job["vendor_ref"]) == {"batch_id"}
    await _force(demo, job, {"status": "Succeeded"})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "succeeded" and done["result_available"]
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 200
    outputs = [(o["name"], o["target"]) for o in result["outputs"]]
    assert outputs == [("0.txt", "[de] Hello"), ("1.txt", "[de] Good bye")]
    assert result["usage"]["units"] == [
        {"unit": "characters", "quantity": len("Hello") + len("Good bye")},
        {"unit": "documents", "quantity": 2},
    ]


async def test_a_batch_is_cancelled(demo):
    job = await demo.submit(NAME, TEXT)
    status, cancelled, _ = await demo.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 202 and cancelled["state"] == "cancelled" and cancelled["terminal"], cancelled
    stats = await demo.sim(_prefix(), "/__sim__/stats")
    assert stats["requests"]["DELETE /batches/{batch_id}"] == 1


async def test_a_private_ref_field_never_leaves_the_gateway(aiohttp_client, aiohttp_server, sim_server, tmp_path,
                                                            monkeypatch, caplog):  # fmt: skip
    """Not in a Job (read, listed, long-polled, streamed, cancelled), a transition, a webhook body, a problem,
    a log line or a metric; encrypted in the store; attach takes it and never echoes it."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_STORE_KEY", RefSealer.new_key().decode())
    received: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    hook_url = str((await aiohttp_server(app, host="127.0.0.1")).make_url("/hook"))
    demo = await make_demo(aiohttp_client, sim_server, tmp_path, store={"secret_key_env": "TEST_STORE_KEY"})
    demo.sim_server = sim_server
    try:
        job = await demo.submit(NAME, TEXT, webhook_url=hook_url)
        key = _key_of(demo, job)
        await _force(demo, job, {"status": "Running"})
        await demo.wait_for(job["id"], lambda j: j["state"] == "running")
        await _force(demo, job, {"status": "Succeeded"})
        done = await demo.wait_for(job["id"], lambda j: j["terminal"])
        for _ in range(200):
            if len(received) >= done["version"]:
                break
            await asyncio.sleep(0.02)
        shown = [json.dumps(job), json.dumps(done)]
        for path in (f"/v1/jobs/{job['id']}", "/v1/jobs", f"/v1/jobs/{job['id']}/transitions",
                     f"/v1/jobs/{job['id']}/events", f"/v1/jobs/{job['id']}/result", "/metrics"):  # fmt: skip
            status, body, _ = await demo.call("GET", path)
            assert status == 200, (path, body)
            shown.append(body.decode() if isinstance(body, bytes) else json.dumps(body))
        # attach a batch made at the vendor directly: the whole ref is given, only the public part comes back;
        # a refused key gives a problem that echoes nothing either
        body = {"targetLanguage": "de", "documents": [{"name": "direct.txt", "content": "SGk="}]}
        headers = {"Ocp-Apim-Subscription-Key": "direct-caller-key"}
        async with demo.session.post(demo.sim_url + _prefix() + "/batches", json=body, headers=headers) as resp:
            direct = await resp.json()
        key = direct["batchKey"]
        wrong = {"batch_id": direct["id"], "batchKey": key[:-1] + ("y" if key.endswith("x") else "x")}
        status, problem, _ = await demo.call("POST", "/v1/jobs/attach", json={"provider": NAME, "vendor_ref": wrong})
        assert status == 502 and problem["code"] == "upstream_auth_failed", problem
        shown.append(json.dumps(problem))
        whole = {"batch_id": direct["id"], "batchKey": direct["batchKey"]}
        status, attached, _ = await demo.call("POST", "/v1/jobs/attach", json={"provider": NAME, "vendor_ref": whole})
        assert status == 201 and attached["vendor_ref"] == {"batch_id": direct["id"]}, attached
        await demo.sim(_prefix(), f"/__sim__/jobs/{direct['id']}/state", {"status": "Succeeded"})
        attached = await demo.wait_for(attached["id"], lambda j: j["terminal"])  # polled with the kept key
        assert attached["state"] == "succeeded"
        shown.append(json.dumps(attached))
        status, problem, _ = await demo.call("POST", f"/v1/jobs/{attached['id']}/cancel")
        assert status == 409
        shown.append(json.dumps(problem))
        assert len(received) >= done["version"] >= 3
        shown.extend(body.decode() for body in received)
        shown.extend(record.getMessage() for record in caplog.records)
        everything = "\n".join(shown)
        for secret in (key, direct["batchKey"], wrong["batchKey"]):
            assert secret not in everything
        assert "batchKey" not in everything
        database = b"".join(p.read_bytes() for p in (tmp_path / "state").glob("gateway.db*"))
        assert key.encode() not in database and direct["batchKey"].encode() not in database  # encrypted at rest
    finally:
        await demo.session.close()


async def test_an_estimate_moves_poll_after_without_a_new_version(demo):
    job = await demo.submit(NAME, TEXT)
    await _force(demo, job, {"status": "Running", "estimatedSecondsRemaining": 2})
    running = await demo.wait_for(job["id"], lambda j: j["state"] == "running")
    assert running["eta_s"] is not None and 1.0 <= running["eta_s"] <= 2.0
    assert running["estimated_finish_at"] is not None
    assert 2.0 <= running["poll_after_s"] <= 3.1  # shortly after the estimate, not the 0.05-0.2 s backoff ladder
    await _force(demo, job, {"estimatedSecondsRemaining": 0.3})
    later = await demo.wait_for(job["id"], lambda j: j["checked_at"] != running["checked_at"], within=6)
    assert later["version"] == running["version"]  # the estimate alone is no transition
    assert later["eta_s"] <= 0.3 and later["poll_after_s"] <= 1.35
    finish, checked = (datetime.fromisoformat(later[k]) for k in ("estimated_finish_at", "checked_at"))
    assert (finish - checked).total_seconds() == pytest.approx(0.3, abs=0.01)
    _, history, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/transitions")
    assert [t["state"] for t in history["data"]] == ["queued", "running"]


async def test_a_quota_answer_is_its_own_problem_on_submit(demo):
    await _fault(demo, "quota_exceeded")
    status, problem, _ = await demo.call("POST", "/v1/jobs", json={"provider": NAME, "input": TEXT})
    assert status == 402 and problem["code"] == "upstream_quota_exceeded", problem
    assert problem["detail"] == f"{NAME}: The character quota of this subscription is used up for this period."
    assert "{" not in problem["detail"]


async def test_a_quota_answer_fails_over_on_a_route(aiohttp_client, sim_server, tmp_path):
    demo = await make_demo(aiohttp_client, sim_server, tmp_path, routes={"any": {"providers": [NAME, "camb"]}})
    try:
        await demo.sim(_prefix(), "/__sim__/faults", {"fault": "quota_exceeded", "count": 1})
        text = {**TEXT, "source_language": "en-us", "target_language": "de-de"}
        status, job, _ = await demo.call("POST", "/v1/jobs", json={"route": "any", "input": text})
        assert status == 201 and job["provider"] == "camb", job
        assert [(a["provider"], a["outcome"]) for a in job["attempts"]] == [
            (NAME, "upstream_quota_exceeded"),
            ("camb", "accepted"),
        ]
    finally:
        await demo.session.close()


async def test_a_quota_answer_while_polling_shows_why_the_job_is_stale(demo):
    job = await demo.submit(NAME, TEXT)
    await demo.wait_for(job["id"], lambda j: j["checked_at"] is not None)
    await _fault(demo, "quota_exceeded", count=1000)
    stale = await demo.wait_for(job["id"], lambda j: j["stale"])
    assert stale["stale_reason"]["code"] == "upstream_quota_exceeded"
    assert "quota" in stale["stale_reason"]["message"] and stale["error"] is None and stale["state"] == "queued"
    async with demo.session.delete(demo.sim_url + _prefix() + "/__sim__/faults") as resp:
        assert resp.status == 200
    fresh = await demo.wait_for(job["id"], lambda j: not j["stale"], within=15)
    assert fresh["stale_reason"] is None


async def test_a_result_already_taken_ends_the_job_with_result_unavailable(demo):
    job = await demo.submit(NAME, TEXT)
    documents = _sim(demo).jobs[job["vendor_ref"]["batch_id"]].private["documents"]
    documents[1]["downloaded"] = True  # someone else took the one-time download of the second document
    await _force(demo, job, {"status": "Succeeded"})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert done["state"] == "completed_with_issues" and done["result_available"]
    assert [i["code"] for i in done["issues"]] == ["result_unavailable"]
    assert "already downloaded" in done["issues"][0]["message"]
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 200 and [i["code"] for i in result["issues"]] == ["result_unavailable"]
    await asyncio.sleep(0.5)  # many poll intervals: the ended job is not asked about again
    stats = (await demo.sim(_prefix(), "/__sim__/stats"))["requests"]
    assert stats["POST /batches/{batch_id}/documents"] == 1, stats
