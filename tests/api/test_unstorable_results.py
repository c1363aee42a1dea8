"""A vendor that answers a finished job with a result the gateway cannot keep (text UTF-8 cannot encode, from
the vendor itself: the API refuses such text at submit) ends the job; it is never polled forever."""

from __future__ import annotations

import asyncio

from gateway.plugins import get_providers
from gateway.testing.clock import FakeClock
from support.cases import load_case
from support.cases.datafold import VALID_MODELS

DATAFOLD = get_providers()["datafold"].sim_prefix


async def test_a_result_that_cannot_be_stored_ends_the_job(new_demo):
    clock = FakeClock()
    demo = await new_demo(clock=clock, poll={"initial_s": 1.0, "max_s": 60.0})
    case = load_case("datafold")
    job = await demo.submit("datafold", case.valid_input)
    broken = [{**VALID_MODELS[0], "target_sql": "SELECT '\ud800'"}, VALID_MODELS[1]]
    await demo.sim(DATAFOLD, f"/__sim__/jobs/{case.sim_job_id(job['vendor_ref'])}/state",
                   {"status": "done", "translated_models": broken})  # fmt: skip
    for _ in range(120):  # two hours of the gateway's time
        await clock.advance(60.0)
        await asyncio.sleep(0.005)
        status, now, _ = await demo.call("GET", f"/v1/jobs/{job['id']}")
        assert status == 200, now
        if now["terminal"]:
            break
    assert now["terminal"], now
    assert any(issue["code"] == "result_unavailable" for issue in now["issues"]), now
    [listed] = await demo.listing()
    assert listed["id"] == job["id"] and listed["terminal"]
