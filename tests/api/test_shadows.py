"""Shadow runs through HTTP on the live simulators: a route's `shadow` provider gets a copy of the sampled fraction
of its submits as a linked job of the same tenant; the primary never waits for it and nothing that happens to the
shadow reaches the primary (its answer, its state, its webhooks); the shadow's usage is in the ledger under the
shadow provider."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from gateway.plugins import get_providers
from gateway.server.keys import GATEWAY
from support.cases import load_case
from support.demo import KEY_B, Demo
from support.receiver import start_receiver
from support.waiting import wait_until

QA = get_providers()["segment_qa"].sim_prefix
CAMB = get_providers()["camb"].sim_prefix
_n = itertools.count()


def shadowed(sample: float = 1.0, seed: int | None = 7) -> dict[str, Any]:
    """The demo's route plus `shadowed`: segment_qa, with camb as its shadow."""
    return {
        "text": {"providers": ["segment_qa", "camb"]},
        "shadowed": {"providers": ["segment_qa"], "shadow": "camb", "shadow_sample": sample, "shadow_seed": seed},
    }


def text() -> dict[str, Any]:
    return {
        "kind": "text",
        "source_language": "en-us",
        "target_language": "de-de",
        "texts": [f"Shadow text {next(_n)}"],
    }


async def submit(demo: Demo, **extra: Any) -> dict[str, Any]:
    status, job, _ = await demo.call("POST", "/v1/jobs", json={"route": "shadowed", "input": text(), **extra})
    assert status == 201, job
    return job


async def get(demo: Demo, job_id: str, key: str | None = None) -> tuple[int, Any]:
    status, body, _ = await demo.call("GET", f"/v1/jobs/{job_id}", **({"key": key} if key else {}))
    return status, body


async def shadow_of(demo: Demo, primary: dict[str, Any]) -> dict[str, Any]:
    """The primary's shadow job, once its submit has been answered."""
    assert primary["shadow"] is not None
    await wait_until(lambda: _exists(demo, primary["shadow"]), what="the shadow job")
    return (await get(demo, primary["shadow"]))[1]


async def _exists(demo: Demo, job_id: str) -> bool:
    return (await get(demo, job_id))[0] == 200


async def finish(demo: Demo, name: str, job: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    await demo.sim(
        get_providers()[name].sim_prefix, f"/__sim__/jobs/{load_case(name).sim_job_id(job['vendor_ref'])}/state", patch
    )
    return await demo.wait_for(job["id"], lambda j: j["terminal"])


async def test_a_shadow_run_is_a_linked_job_with_its_own_usage(new_demo, aiohttp_server) -> None:
    receiver = await start_receiver(aiohttp_server)
    hook = receiver.url
    demo = await new_demo(routes=shadowed())
    primary = await submit(demo, webhook_url=hook, metadata={"ticket": "T-1"})
    shadow = await shadow_of(demo, primary)
    assert shadow["shadow_of"] == primary["id"] and shadow["provider"] == "camb" and shadow["shadow"] is None
    assert shadow["metadata"] == {"ticket": "T-1"} and shadow["route"] == "shadowed"
    assert primary["provider"] == "segment_qa" and primary["shadow_of"] is None
    assert (await get(demo, shadow["id"], key=KEY_B))[0] == 404  # the tenant's own, like its other jobs

    done = await finish(demo, "segment_qa", primary, {"status": "completed", "cost_eur": 0.3})
    shadow_done = await finish(demo, "camb", shadow, {"status": "SUCCESS", "run_id": None})
    assert done["state"] == "succeeded" and shadow_done["state"] == "succeeded"
    status, result, _ = await demo.call("GET", f"/v1/jobs/{shadow['id']}/result")
    assert status == 200 and result["outputs"]
    # the tenant's webhooks carry the primary only
    await wait_until(lambda: len(receiver.events) == done["version"], what="the primary's webhooks")
    assert {e["job"]["id"] for e in receiver.events} == {primary["id"]}
    # the ledger has the shadow's attempt under the shadow provider, apart from the primary's
    status, report, _ = await demo.call("GET", "/v1/usage")
    shadow_group = next(g for g in report["groups"] if g["shadow"])
    assert shadow_group["key"] == "camb" and shadow_group["jobs"]["succeeded"] == 1
    assert shadow_group["durations"]["camb"]["count"] == 1
    primary_group = next(g for g in report["groups"] if not g["shadow"])
    assert primary_group["key"] == "segment_qa" and primary_group["usage"]["cost"] == {"EUR": 0.3}


async def test_the_primary_never_waits_for_its_shadow(new_demo) -> None:
    demo = await new_demo(routes=shadowed())
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "delay", "delay_s": 2.0, "count": 1})
    primary = await submit(demo)
    # the shadow's vendor is being asked (its first request hangs) and has not answered; the primary ends meanwhile
    await wait_until(lambda: _requests(demo, CAMB), what="the shadow's vendor to be asked")
    done = await finish(demo, "segment_qa", primary, {"status": "completed"})
    assert done["state"] == "succeeded"
    assert (await get(demo, primary["shadow"]))[0] == 404  # still being submitted
    shadow = await shadow_of(demo, primary)
    assert shadow["state"] in ("running", "queued") and shadow["shadow_of"] == primary["id"]


async def _requests(demo: Demo, prefix: str, what: str | None = None) -> int:
    """Requests the simulator has had (of one kind, or all)."""
    requests = (await demo.sim(prefix, "/__sim__/stats"))["requests"]
    return int(requests.get(what, 0) if what else sum(requests.values()))


async def test_a_failing_shadow_never_touches_the_primary(new_demo) -> None:
    demo = await new_demo(routes=shadowed())
    await demo.sim(CAMB, "/__sim__/faults", {"fault": "http_500", "count": 1})
    primary = await submit(demo)
    shadow = await shadow_of(demo, primary)  # the vendor refused it: a shadow job that failed at once
    assert shadow["state"] == "failed" and shadow["error"]["code"] == "upstream_error"
    assert shadow["attempts"][0]["outcome"] == "upstream_error"
    second = await submit(demo)
    later = await shadow_of(demo, second)
    await finish(demo, "camb", later, {"status": "ERROR", "run_id": None})
    for job in (primary, second):
        done = await finish(demo, "segment_qa", job, {"status": "completed"})
        assert done["state"] == "succeeded" and done["error"] is None and done["provider"] == "segment_qa"
        assert done["attempts"] == [
            {**done["attempts"][0], "provider": "segment_qa", "outcome": "succeeded", "error": None}
        ]


async def test_the_sampled_fraction_holds_over_200_submits(new_demo) -> None:
    demo = await new_demo(routes=shadowed(sample=0.25, seed=2024))
    primaries: list[dict[str, Any]] = []
    for _ in range(10):  # 200 submits, 20 at a time
        primaries += await asyncio.gather(*(submit(demo) for _ in range(20)))
    sampled = [p for p in primaries if p["shadow"] is not None]
    assert 35 <= len(sampled) <= 65, len(sampled)  # 25 % of 200 is 50
    await demo.app[GATEWAY].shadows.idle()
    assert await _requests(demo, CAMB, "POST /translate") == len(sampled)  # exactly the sampled ones were copied
    for primary in sampled[:5]:
        assert (await shadow_of(demo, primary))["shadow_of"] == primary["id"]
    # no sampling without a shadow: the plain route never links a shadow
    status, plain, _ = await demo.call("POST", "/v1/jobs", json={"route": "text", "input": text()})
    assert status == 201 and plain["shadow"] is None
