"""Every route through HTTP against the demo wiring, simulators live, for all four providers."""

from __future__ import annotations

import base64

import pytest

from gateway.plugins import get_providers
from gateway.states import State
from support.cases import load_case
from support.demo import KEY_B

NAMES = ["datafold", "camb", "segment_qa", "doc_translator"]
TERMINAL = {s.value for s in State if s.terminal}


def prefix(name: str) -> str:
    return get_providers()[name].sim_prefix


@pytest.mark.parametrize("name", NAMES)
async def test_submit_then_every_vendor_status_then_result(demo, name):
    case = load_case(name)
    job = await demo.submit(name, case.valid_input, metadata={"team": "qa"})
    assert job["provider"] == name and job["version"] == 1 and job["metadata"] == {"team": "qa"}
    assert set(job) >= {
        "id",
        "vendor_ref",
        "state",
        "terminal",
        "vendor_status",
        "stage",
        "progress",
        "result_available",
        "error",
        "action",
        "issues",
        "version",
        "created_at",
        "updated_at",
        "finished_at",
        "stale",
        "checked_at",
        "poll_after_s",
        "metadata",
        "links",
    }
    sim_id = case.sim_job_id(job["vendor_ref"])
    seen_versions = [job["version"]]
    for patch, expected in case.status_patches:
        if expected.terminal:
            continue  # terminal is sticky: walked below, one per job
        await demo.sim(prefix(name), f"/__sim__/jobs/{sim_id}/state", patch)
        job = await demo.wait_for(
            job["id"], lambda j, p=patch, e=expected: j["state"] == e.value and j["vendor_status"] == p.get("status")
        )
        seen_versions.append(job["version"])
    await demo.sim(prefix(name), f"/__sim__/jobs/{sim_id}/state", case.finished_patch)
    job = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert job["result_available"] is True and job["finished_at"] is not None and job["poll_after_s"] is None
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 200
    assert result["job_id"] == job["id"] and result["provider"] == name and result["state"] == job["state"]
    status, history, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/transitions")
    versions = [t["version"] for t in history["data"]]
    assert versions == list(range(1, job["version"] + 1))
    assert set(seen_versions) <= set(versions)


@pytest.mark.parametrize("name", NAMES)
async def test_each_terminal_vendor_status_reaches_its_canonical_state(demo, name):
    case = load_case(name)
    for patch, expected in case.status_patches:
        if not expected.terminal:
            continue
        job = await demo.submit(name, _distinct(name, case.valid_input, patch))
        await demo.sim(prefix(name), f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state", patch)
        job = await demo.wait_for(job["id"], lambda j: j["terminal"])
        assert job["state"] == expected.value, (patch, job)
        status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
        if expected.has_result:
            assert status == 200 and body["state"] == expected.value
        else:
            assert status == 409 and body["code"] == "no_result" and body["job"]["id"] == job["id"]


def _distinct(name, input, patch):
    """Segment-QA refuses duplicate content; give each job its own text."""
    if name == "segment_qa" and "texts" in input:
        return {**input, "texts": [*input["texts"], f"variant {sorted(patch.items())!r}"]}
    return input


async def test_result_before_finish_is_not_ready(demo):
    case = load_case("camb")
    job = await demo.submit("camb", case.valid_input)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 409 and body["code"] == "not_ready" and body["job"]["id"] == job["id"]
    assert body["type"].endswith("/not_ready") and body["status"] == 409


async def test_document_artifact_is_streamed_from_the_gateway_store(demo):
    pdf = b"%PDF-1.4\n" + b"hello world " * 5000
    job = await demo.submit(
        "doc_translator",
        {
            "kind": "document",
            "source_language": "en",
            "target_language": "de",
            "filename": "report.pdf",
            "content_base64": base64.b64encode(pdf).decode(),
        },
    )
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/artifact")
    assert status == 409 and body["code"] == "not_ready"
    sim_id = job["vendor_ref"]["job_id"]
    await demo.sim(prefix("doc_translator"), f"/__sim__/jobs/{sim_id}/state", {"status": "processing", "progress": 20})
    job = await demo.wait_for(job["id"], lambda j: j["progress"] == 20)
    assert job["state"] == "running"
    finished = load_case("doc_translator").finished_patch
    await demo.sim(prefix("doc_translator"), f"/__sim__/jobs/{sim_id}/state", finished)
    job = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert job["state"] == "succeeded"
    status, data, headers = await demo.call("GET", f"/v1/jobs/{job['id']}/artifact")
    assert status == 200 and data.startswith(b"%PDF-")
    assert headers["Content-Type"].startswith("application/pdf")
    assert "filename=" in headers["Content-Disposition"]
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert result["artifact"]["href"] == f"/v1/jobs/{job['id']}/artifact"
    # the vendor purges the job: the gateway still serves what it kept
    await demo.sim(prefix("doc_translator"), "/__sim__/faults", {"fault": "http_500", "count": 50})
    status, again, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/artifact")
    assert status == 200 and again == data


async def test_no_artifact_for_providers_without_files(demo):
    job = await demo.submit("camb", load_case("camb").valid_input)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/artifact")
    assert status == 404 and body["code"] == "no_artifact"


async def test_cancel_answers(demo):
    case = load_case("camb")
    job = await demo.submit("camb", case.valid_input)
    status, body, _ = await demo.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 409 and body["code"] == "unsupported"
    await demo.sim(prefix("camb"), f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state", case.finished_patch)
    await demo.wait_for(job["id"], lambda j: j["terminal"])
    status, body, _ = await demo.call("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 409 and body["code"] == "not_cancellable"


async def test_attach_adopts_a_job_started_at_the_vendor(demo):
    case = load_case("segment_qa")
    async with demo.session.post(
        demo.sim_url + prefix("segment_qa") + "/v1/jobs",
        json={"mode": "translation", "source_lang": "de", "target_lang": "en", "texts": ["Guten Morgen, attach."]},
        headers={"X-API-Key": "direct-key"},
    ) as resp:
        assert resp.status == 202
        vendor_job = (await resp.json())["job_id"]
    status, job, headers = await demo.call(
        "POST", "/v1/jobs/attach", json={"provider": "segment_qa", "vendor_ref": {"job_id": vendor_job}}
    )
    assert status == 201 and job["vendor_ref"]["job_id"] == vendor_job
    assert headers["Location"] == f"/v1/jobs/{job['id']}"
    assert job["vendor_status"] == "queued" and job["checked_at"] is not None
    await demo.sim(prefix("segment_qa"), f"/__sim__/jobs/{vendor_job}/state", case.finished_patch)
    job = await demo.wait_for(job["id"], lambda j: j["terminal"])
    assert job["result_available"]
    status, body, _ = await demo.call(
        "POST", "/v1/jobs/attach", json={"provider": "segment_qa", "vendor_ref": {"job_id": "no-such-job"}}
    )
    assert status == 422 and body["code"] == "validation_error"


async def test_listing_newest_first_with_cursor_and_filters(demo):
    case = load_case("camb")
    ids = [(await demo.submit("camb", case.valid_input))["id"] for _ in range(5)]
    ids.append((await demo.submit("segment_qa", load_case("segment_qa").valid_input))["id"])
    await demo.submit("camb", case.valid_input, key=KEY_B)  # another tenant's job is never listed
    seen, cursor = [], None
    while True:
        status, page, _ = await demo.call("GET", "/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200 and len(page["data"]) <= 2
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    status, page, _ = await demo.call("GET", "/v1/jobs?provider=segment_qa")
    assert [j["id"] for j in page["data"]] == [ids[-1]]
    status, page, _ = await demo.call("GET", "/v1/jobs?state=succeeded")
    assert page["data"] == []
    for bad in ("limit=0", "limit=201", "limit=x", "state=bogus", "cursor=%%%"):
        status, body, _ = await demo.call("GET", f"/v1/jobs?{bad}")
        assert status == 422 and body["code"] == "validation_error", bad


async def test_idempotency_key(demo):
    case = load_case("camb")
    body = {"provider": "camb", "input": case.valid_input}
    headers = {"Idempotency-Key": "order-42"}
    s1, first, h1 = await demo.call("POST", "/v1/jobs", json=body, headers=headers)
    s2, second, _ = await demo.call("POST", "/v1/jobs", json=body, headers=headers)
    assert (s1, s2) == (201, 200) and first["id"] == second["id"] and h1["Location"] == f"/v1/jobs/{first['id']}"
    s3, third, _ = await demo.call("POST", "/v1/jobs", json={**body, "metadata": {"x": 1}}, headers=headers)
    assert s3 == 409 and third["code"] == "idempotency_mismatch"
    s4, other, _ = await demo.call("POST", "/v1/jobs", json=body, headers=headers, key=KEY_B)
    assert s4 == 201 and other["id"] != first["id"]  # keys are per tenant
    stats = await demo.sim(prefix("camb"), "/__sim__/stats")
    assert stats["requests"]["POST /translate"] == 2  # the repeat did not reach the vendor


async def test_providers_route(demo):
    status, body, _ = await demo.call("GET", "/v1/providers")
    assert status == 200
    names = {p["name"] for p in body["providers"]}
    in_demo = {n for n, p in get_providers().items() if p.sim_prefix and p.demo_settings() is not None}
    assert names == in_demo >= set(NAMES)  # with any third-party plugin installed beside the built-ins
    camb = next(p for p in body["providers"] if p["name"] == "camb")
    assert camb["mapping"]["PENDING"] == "running" and camb["capabilities"]["input_kinds"] == ["native", "text"]


async def test_route_fails_over_to_the_next_provider(demo):
    await demo.sim(prefix("segment_qa"), "/__sim__/faults", {"fault": "http_503", "count": 1})
    status, job, _ = await demo.call(
        "POST",
        "/v1/jobs",
        json={
            "route": "text",
            "input": {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["fail over"]},
        },
    )
    assert status == 201, job
    assert job["provider"] == "camb" and job["route"] == "text"
    assert [a["provider"] for a in job["attempts"]] == ["segment_qa", "camb"]
    assert job["attempts"][0]["outcome"] == "upstream_error"
