"""Tenant budgets through HTTP on the live simulators: a submit over budget is 402 budget_exceeded with the current
spend, before any vendor is called (the simulators' request counts show none), while another tenant goes on;
jobs per day hold under concurrent submits; a submit that makes no job gives its day's job back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.client import AsyncClient, BudgetExceeded
from gateway.plugins import get_providers
from gateway.server.run import DEMO_TENANTS
from support.cases import load_case
from support.demo import KEY_A, KEY_B, Demo

QA = get_providers()["segment_qa"].sim_prefix
CAMB = get_providers()["camb"].sim_prefix


def tenants(**budget: Any) -> dict[str, Any]:
    """The demo tenants, the first (`demo`, KEY_A) with this budget."""
    return {**DEMO_TENANTS, "demo": {**DEMO_TENANTS["demo"], "budget": budget}}


def text(n: int) -> dict[str, Any]:
    return {"kind": "text", "source_language": "de", "target_language": "en", "texts": [f"Budget Satz {n}"]}


async def vendor_requests(demo: Demo, sim_prefix: str) -> dict[str, int]:
    return (await demo.sim(sim_prefix, "/__sim__/stats"))["requests"]


async def reset_stats(demo: Demo, sim_prefix: str) -> None:
    async with demo.session.delete(demo.sim_url + sim_prefix + "/__sim__/stats") as resp:
        assert resp.status == 200


async def post(demo: Demo, body: dict[str, Any], **kw: Any) -> tuple[int, Any, Any]:
    return await demo.call("POST", "/v1/jobs", json=body, **kw)


async def test_a_tenant_over_its_money_budget_gets_402_and_no_vendor_is_called(new_demo) -> None:
    demo = await new_demo(tenants=tenants(money={"EUR": 0.05}, period="month"))
    job = await demo.submit("segment_qa", text(1))
    sim_id = load_case("segment_qa").sim_job_id(job["vendor_ref"])
    patch = {"status": "completed", "current_step": None, "cost_eur": 0.06, "token_usage": {"input_tokens": 5}}
    await demo.sim(QA, f"/__sim__/jobs/{sim_id}/state", patch)
    await demo.wait_for(job["id"], lambda j: j["terminal"])  # the cost is known, and charged, when the job ends
    await reset_stats(demo, QA)
    await reset_stats(demo, CAMB)

    for body in ({"provider": "segment_qa", "input": text(2)}, {"route": "text", "input": text(3)}):
        status, problem, headers = await post(demo, body)
        assert status == 402 and problem["code"] == "budget_exceeded", problem
        currencies = problem["budget"]["money"]["currencies"]
        assert currencies == {"EUR": {"limit": 0.05, "spent": 0.06}}
        assert problem["budget"]["money"]["period"] == "month"
        assert int(headers["Retry-After"]) > 0
    assert await vendor_requests(demo, QA) == {} and await vendor_requests(demo, CAMB) == {}
    # another tenant, without a budget, is not affected
    status, other, _ = await post(demo, {"provider": "segment_qa", "input": text(4)}, key=KEY_B)
    assert status == 201, other
    assert (await vendor_requests(demo, QA)).get("POST /v1/jobs") == 1
    # the Python client raises it as a typed error carrying the spend
    async with AsyncClient(str(demo.client.make_url("")).rstrip("/"), KEY_A) as gw:
        with pytest.raises(BudgetExceeded) as refused:
            await gw.submit(text(5), provider="segment_qa")
    assert refused.value.status == 402 and refused.value.budget["money"]["currencies"]["EUR"]["spent"] == 0.06
    # the tenant's usage report shows where it stands
    status, report, _ = await demo.call("GET", "/v1/usage")
    assert report["budget"]["money"]["currencies"]["EUR"]["spent"] == 0.06


async def test_a_spend_below_the_limit_admits_submits(new_demo) -> None:
    demo = await new_demo(tenants=tenants(money={"EUR": 1.0, "USD": 2.0}))
    job = await demo.submit("segment_qa", text(5))
    sim_id = load_case("segment_qa").sim_job_id(job["vendor_ref"])
    await demo.sim(QA, f"/__sim__/jobs/{sim_id}/state", {"status": "completed", "cost_eur": 0.4})
    await demo.wait_for(job["id"], lambda j: j["terminal"])
    status, body, _ = await post(demo, {"provider": "segment_qa", "input": text(6)})
    assert status == 201, body


async def test_jobs_per_day_hold_under_concurrent_submits(new_demo) -> None:
    demo = await new_demo(tenants=tenants(jobs_per_day=3))
    answers = await asyncio.gather(*(post(demo, {"provider": "segment_qa", "input": text(10 + i)}) for i in range(8)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] * 3 + [402] * 5
    refused = next(body for status, body, _ in answers if status == 402)
    assert refused["code"] == "budget_exceeded" and refused["budget"]["jobs"]["limit"] == 3
    assert refused["budget"]["jobs"]["used"] == 3
    assert (await vendor_requests(demo, QA)).get("POST /v1/jobs") == 3
    status, listed, _ = await demo.call("GET", "/v1/jobs")
    assert len(listed["data"]) == 3
    # the other tenant has its own day
    status, _, _ = await post(demo, {"provider": "segment_qa", "input": text(30)}, key=KEY_B)
    assert status == 201


async def test_an_idempotent_replay_is_not_a_new_job_and_a_failed_submit_gives_its_job_back(new_demo) -> None:
    demo = await new_demo(tenants=tenants(jobs_per_day=1))
    await demo.sim(QA, "/__sim__/faults", {"fault": "http_500", "count": 1})
    status, problem, _ = await post(demo, {"provider": "segment_qa", "input": text(40)})
    assert status == 502 and problem["code"] == "upstream_error"  # no job made: the day's job is given back
    body = {"provider": "segment_qa", "input": text(41)}
    status, first, _ = await post(demo, body, headers={"Idempotency-Key": "k-1"})
    assert status == 201, first
    status, again, _ = await post(demo, body, headers={"Idempotency-Key": "k-1"})
    assert status == 200 and again["id"] == first["id"]
    status, problem, _ = await post(demo, {"provider": "segment_qa", "input": text(42)})
    assert status == 402 and problem["budget"]["jobs"] == {**problem["budget"]["jobs"], "used": 1, "limit": 1}
