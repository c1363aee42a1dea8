"""Attach and tenant isolation (issue class 5): a vendor job the gateway holds for another tenant answers
exactly as a vendor job nobody knows, for every provider; attach is a permission each tenant is given."""

from __future__ import annotations

import pytest

from gateway.plugins import get_providers
from gateway.server.run import DEMO_TENANTS
from gateway.testing.clock import FakeClock
from support.cases import load_case
from support.demo import KEY_A, KEY_B

PROVIDERS = sorted(name for name, p in get_providers().items() if p.sim_prefix)


async def attach(demo, provider: str, ref: dict, key: str):
    return await demo.call("POST", "/v1/jobs/attach", key=key, json={"provider": provider, "vendor_ref": ref})


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_another_tenants_vendor_job_answers_as_an_unknown_one(new_demo, provider):
    clock = FakeClock()  # the watcher polls only when the test moves this clock: the vendor's counts are the attach's
    demo = await new_demo(clock=clock)
    case = load_case(provider)
    job = await demo.submit(provider, case.valid_input, key=KEY_A)
    _, unknown, _ = await attach(demo, provider, case.unknown_ref, KEY_B)
    assert unknown["code"] == "validation_error"
    # the whole ref: a Job shows only its public part; private fields (per-job vendor secrets) the caller knows
    ref = {
        **job["vendor_ref"],
        **{field: "key-known-elsewhere" for field in get_providers()[provider].private_ref_fields},
    }
    for finished in (False, True):  # while it runs, and once its result is kept
        before = await demo.vendor_requests()  # the watcher is on the fake clock: it does not poll meanwhile
        status, body, _ = await attach(demo, provider, ref, KEY_B)
        assert (status, body) == (422, unknown)
        assert await demo.vendor_requests() == before  # refused before the vendor was asked
        assert await demo.listing(key=KEY_B) == []
        if not finished:
            await demo.finish_on(clock, job, key=KEY_A)
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result", key=KEY_B)
    assert status == 404 and body["code"] == "not_found"
    [mine] = await demo.listing(key=KEY_A)
    assert mine["id"] == job["id"] and mine["terminal"]


async def test_a_ref_the_vendor_completes_is_checked_again(demo):
    """CAMB refs may carry a run_id; a wrong one still names the task, which the vendor's answer reveals."""
    case = load_case("camb")
    job = await demo.finish(await demo.submit("camb", case.valid_input, key=KEY_A), key=KEY_A)
    assert job["vendor_ref"].get("run_id") is not None
    _, unknown, _ = await attach(demo, "camb", case.unknown_ref, KEY_B)
    status, body, _ = await attach(demo, "camb", {**job["vendor_ref"], "run_id": 1}, KEY_B)
    assert (status, body) == (422, unknown)
    status, body, _ = await attach(demo, "camb", {"task_id": job["vendor_ref"]["task_id"]}, KEY_B)
    assert (status, body) == (422, unknown)
    assert await demo.listing(key=KEY_B) == []


async def test_attaching_a_job_the_tenant_holds_gives_that_job_again(new_demo):
    clock = FakeClock()
    demo = await new_demo(clock=clock)
    case = load_case("segment_qa")
    job = await demo.submit("segment_qa", case.valid_input)
    before = await demo.vendor_requests()
    status, again, headers = await attach(demo, "segment_qa", job["vendor_ref"], KEY_A)
    assert status == 200 and again["id"] == job["id"] and headers["Location"] == f"/v1/jobs/{job['id']}"
    assert await demo.vendor_requests() == before
    assert [j["id"] for j in await demo.listing()] == [job["id"]]
    await demo.finish_on(clock, job)


async def test_attach_is_a_permission_of_the_tenant(new_demo):
    tenants = {name: dict(spec) for name, spec in DEMO_TENANTS.items()}
    tenants["demo-b"]["may_attach"] = False
    d = await new_demo(tenants=tenants)
    vendor_ref = load_case("camb").unknown_ref
    before = await d.vendor_requests()
    for body in ({"provider": "camb", "vendor_ref": vendor_ref}, {"not": "even valid"}):
        status, problem, _ = await d.call("POST", "/v1/jobs/attach", key=KEY_B, json=body)
        assert status == 403 and problem["code"] == "forbidden", problem
    assert await d.vendor_requests() == before
    assert await d.listing(key=KEY_B) == []
    status, problem, _ = await attach(d, "camb", vendor_ref, KEY_A)  # the other tenant may
    assert status == 422 and problem["code"] == "validation_error"
    job = await d.submit("camb", load_case("camb").valid_input, key=KEY_B)  # submitting needs no permission
    await d.finish(job, key=KEY_B)
    _, doc, _ = await d.call("GET", "/openapi.json", key=None)
    assert "403" in doc["paths"]["/v1/jobs/attach"]["post"]["responses"]
    assert "403" not in doc["paths"]["/v1/jobs"]["post"]["responses"]


async def test_tenants_may_not_attach_unless_the_configuration_says_so(new_demo):
    tenants = {"plain": {"keys": ["plain-tenant-key"]}}
    d = await new_demo(tenants=tenants)
    status, problem, _ = await attach(d, "camb", load_case("camb").unknown_ref, "plain-tenant-key")
    assert status == 403 and problem["code"] == "forbidden"
