"""The usage ledger through HTTP, on the live simulators: `GET /v1/usage` after a mixed run of jobs on all four
providers equals the sum of what the vendors reported, counted once however often results are fetched and across a
gateway restart; grouping, periods, tenancy, bad parameters and the Prometheus counters."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from gateway.plugins import get_providers
from support.cases import load_case
from support.demo import KEY_B, Demo

NAMES = ["datafold", "camb", "segment_qa", "doc_translator"]
_texts = itertools.count()


def prefix(name: str) -> str:
    return get_providers()[name].sim_prefix


def qa_input(words: int) -> dict[str, Any]:
    """A segment-QA text input of distinct texts (the vendor refuses duplicate content) with `words` words."""
    n = next(_texts)
    return {
        "kind": "text",
        "source_language": "de",
        "target_language": "en",
        "texts": [" ".join(["Wort"] * (words - 1) + [f"nummer{n}"]), f"Satz {n}"],
    }


async def force(demo: Demo, name: str, job: dict[str, Any], patch: dict[str, Any]) -> None:
    await demo.sim(prefix(name), f"/__sim__/jobs/{load_case(name).sim_job_id(job['vendor_ref'])}/state", patch)


def qa_finish(cost: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {
        "status": "completed",
        "current_step": None,
        "cost_eur": float(cost),
        "token_usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


FAILED = {
    "datafold": {"status": "failed"},
    "camb": {"status": "ERROR", "run_id": None},
    "segment_qa": {"status": "dead", "current_step": None, "error_log": ["retries exhausted"]},
    "doc_translator": {"status": "failed", "error": "engine down"},
}
FINISHED = {"camb": {"status": "SUCCESS", "run_id": None}}


async def usage(demo: Demo, key: str | None = None, **query: str) -> dict[str, Any]:
    status, body, _ = await demo.call("GET", "/v1/usage", params=query, **({"key": key} if key else {}))
    assert status == 200, body
    return body


def group(report: dict[str, Any], key: str | None, shadow: bool = False) -> dict[str, Any]:
    return next(g for g in report["groups"] if g["key"] == key and g["shadow"] is shadow)


async def test_a_mixed_run_on_all_four_providers_is_counted_once_across_fetches_and_a_restart(new_demo) -> None:
    demo = await new_demo()
    # what the vendors will report, decided here (segment-QA bills EUR and tokens, counts source words and segments)
    qa_runs = [("0.0123", 1200, 800, 5), ("0.2", 300, 100, 3), ("0.000001", 1, 1, 1), ("1.1", 10_000, 9_000, 9)]
    jobs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # (provider, job, finishing patch)
    for cost, tokens_in, tokens_out, words in qa_runs:
        job = await demo.submit("segment_qa", qa_input(words))
        jobs.append(("segment_qa", job, qa_finish(cost, tokens_in, tokens_out)))
    jobs.append(("segment_qa", await demo.submit("segment_qa", qa_input(4)), FAILED["segment_qa"]))
    for name in ("datafold", "camb", "doc_translator"):
        case = load_case(name)
        jobs.append((name, await demo.submit(name, case.valid_input), FINISHED.get(name, case.finished_patch)))
        jobs.append((name, await demo.submit(name, case.valid_input), FAILED[name]))
    before, after = jobs[::2], jobs[1::2]

    for name, job, patch in before:  # half of the jobs end while the first gateway runs
        await force(demo, name, job, patch)
    for _, job, _ in before:
        await demo.wait_for(job["id"], lambda j: j["terminal"])
        for _ in range(3):  # fetching a result again and again counts nothing more
            await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    first = await usage(demo)
    assert first["total"]["attempts"] == len(before)
    await demo.client.close()  # the gateway stops; the rest of the jobs end at their vendors meanwhile

    for name, job, patch in after:
        await force(demo, name, job, patch)
    demo = await new_demo()  # the same store: the watcher resumes the unfinished jobs
    for _, job, _ in jobs:
        await demo.wait_for(job["id"], lambda j: j["terminal"])
        for _ in range(2):
            await demo.call("GET", f"/v1/jobs/{job['id']}/result")

    report = await usage(demo)
    assert report["group_by"] == "provider"
    assert report["total"]["attempts"] == len(jobs) and sum(report["total"]["jobs"].values()) == len(jobs)
    qa = group(report, "segment_qa")
    expected_eur = sum(Decimal(cost) for cost, *_ in qa_runs)
    assert Decimal(str(qa["usage"]["cost"]["EUR"])) == expected_eur
    assert qa["usage"]["input_tokens"] == sum(r[1] for r in qa_runs)
    assert qa["usage"]["output_tokens"] == sum(r[2] for r in qa_runs)
    # the vendor counts the source words of every text and the segments (two texts per job) of each result
    assert qa["usage"]["units"] == {"words": sum(r[3] + 2 for r in qa_runs), "segments": 2 * len(qa_runs)}
    assert qa["jobs"] == {"succeeded": 4, "completed_with_issues": 0, "failed": 1, "cancelled": 0}
    assert qa["durations"]["segment_qa"]["count"] == 5
    for name in ("datafold", "camb", "doc_translator"):
        entry = group(report, name)
        assert entry["jobs"]["failed"] == 1 and entry["jobs"]["succeeded"] + entry["jobs"]["completed_with_issues"] == 1
        assert entry["usage"]["reported"] == 0 and entry["usage"]["cost"] == {}  # these vendors report no usage
    # the ledger equals the usage of the results the API serves, summed
    served = Decimal(0)
    for _, job, _ in jobs:
        status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
        if status == 200 and result["usage"] and result["usage"]["cost"]:
            served += Decimal(str(result["usage"]["cost"]["amount"]))
    assert served == expected_eur
    assert report["total"]["usage"]["cost"] == {"EUR": float(expected_eur)}


async def test_grouping_by_route_and_day_and_periods(demo) -> None:
    routed = await demo.call("POST", "/v1/jobs", json={"route": "text", "input": qa_input(3)})
    assert routed[0] == 201
    direct = await demo.submit("segment_qa", qa_input(2))
    for job in (routed[1], direct):
        await force(demo, "segment_qa", job, qa_finish("0.5", 10, 20))
        await demo.wait_for(job["id"], lambda j: j["terminal"])
    by_route = await usage(demo, group_by="route")
    assert {g["key"] for g in by_route["groups"]} == {"text", None}
    assert group(by_route, "text")["usage"]["cost"] == {"EUR": 0.5}
    assert group(by_route, "text")["durations"]["segment_qa"]["count"] == 1
    by_day = await usage(demo, group_by="day")
    (today,) = by_day["groups"]
    assert today["key"] == by_day["to"][:10] and today["usage"]["cost"] == {"EUR": 1.0}
    # a period that ended before the jobs did holds nothing
    empty = await usage(demo, to="2020-01-02", **{"from": "2020-01-01"})
    assert empty["groups"] == [] and empty["total"]["attempts"] == 0
    assert empty["from"] == "2020-01-01T00:00:00Z" and empty["to"] == "2020-01-02T00:00:00Z"
    # another tenant sees none of it
    other = await usage(demo, key=KEY_B)
    assert other["groups"] == [] and other["total"]["usage"]["cost"] == {}


@pytest.mark.parametrize(
    "query",
    [
        {"group_by": "tenant"},
        {"from": "yesterday"},
        {"from": "2024-01-01T10:00:00"},  # a time needs its offset
        {"from": "2024-02-30"},
        {"from": "2024-05-02", "to": "2024-05-01"},
        {"from": "2020-01-01", "to": "2024-01-01"},  # more than 366 days
    ],
)
async def test_bad_usage_queries_are_422_naming_the_parameter(demo, query) -> None:
    status, body, _ = await demo.call("GET", "/v1/usage", params=query)
    assert status == 422 and body["code"] == "validation_error", body
    assert body["errors"][0]["loc"][0] == "query"


async def test_usage_needs_a_key(demo) -> None:
    status, body, _ = await demo.call("GET", "/v1/usage", key=None)
    assert status == 401 and body["code"] == "unauthorized"


async def test_ended_attempts_are_prometheus_counters(demo) -> None:
    job = await demo.submit("segment_qa", qa_input(3))
    await force(demo, "segment_qa", job, qa_finish("0.25", 40, 60))
    await demo.wait_for(job["id"], lambda j: j["terminal"])
    status, text, _ = await demo.call("GET", "/metrics", key=None)
    assert status == 200
    lines = text.decode().splitlines()
    assert 'gateway_usage_attempts_total{provider="segment_qa",shadow="false",state="succeeded"} 1' in lines
    assert 'gateway_usage_cost_total{currency="EUR",provider="segment_qa"} 0.25' in lines
    assert 'gateway_usage_tokens_total{direction="input",provider="segment_qa"} 40' in lines
    assert 'gateway_usage_tokens_total{direction="output",provider="segment_qa"} 60' in lines
    assert 'gateway_usage_units_total{provider="segment_qa",unit="segments"} 2' in lines
