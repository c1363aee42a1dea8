"""segment_qa: the simulator answers as the vendor doc and contract sections 5 and 6 say."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorFactory, VendorHarness

PREFIX = "/segment-qa"
KEY = {"X-API-Key": "sim-key-segment_qa"}
STATUS_FIELDS = {
    "job_id",
    "status",
    "segment_count",
    "segments",
    "token_usage",
    "cost_eur",
    "error_log",
    "created_at",
    "started_at",
    "finished_at",
    "current_step",
    "source_review_enabled",
}
RESULT_FIELDS = {
    "job_id",
    "status",
    "translation",
    "segments",
    "cost_eur",
    "token_usage",
    "word_count",
    "qa_score",
    "warning",
    "delivery_notes",
}


def body(*texts: str, **extra: Any) -> dict[str, Any]:
    return {"mode": "translation", "source_lang": "de", "target_lang": "en", "texts": list(texts), **extra}


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("segment_qa", step_s=1.0)


async def create(client: TestClient, payload: dict[str, Any]) -> str:
    resp = await client.post(f"{PREFIX}/v1/jobs", json=payload, headers=KEY)
    assert resp.status == 202, await resp.text()
    return (await resp.json())["job_id"]


async def status_of(client: TestClient, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"{PREFIX}/v1/jobs/{job_id}", headers=KEY)
    assert resp.status == 200
    return await resp.json()


async def run_to_end(client: TestClient, clock: FakeClock, job_id: str, steps: int = 15) -> list[dict[str, Any]]:
    """Every view of the job, one step apart, until it stops changing status for good."""
    views = [await status_of(client, job_id)]
    for _ in range(steps):
        await clock.advance(1.0)
        views.append(await status_of(client, job_id))
    return views


def timeline(views: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    seen: list[tuple[str, str | None]] = []
    for view in views:
        key = (view["status"], view["current_step"])
        if not seen or seen[-1] != key:
            seen.append(key)
    return seen


# -- create -------------------------------------------------------------------------------------------------
async def test_create_answers_202_queued_and_the_status_has_every_documented_field(client: TestClient) -> None:
    resp = await client.post(f"{PREFIX}/v1/jobs", json=body("Hallo Welt."), headers=KEY)
    assert resp.status == 202
    created = await resp.json()
    assert set(created) == {"job_id", "status"} and created["status"] == "queued"
    view = await status_of(client, created["job_id"])
    assert set(view) == STATUS_FIELDS
    assert view["job_id"] == created["job_id"]
    assert (view["status"], view["current_step"], view["segment_count"], view["segments"]) == ("queued", None, 0, [])
    assert view["token_usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert view["finished_at"] is None and view["started_at"] is None and view["source_review_enabled"] is False


async def test_a_single_text_is_split_into_sentence_segments(client: TestClient, clock: FakeClock) -> None:
    payload = {"mode": "translation", "source_lang": "de", "target_lang": "en", "text": "Eins. Zwei! Drei?"}
    job_id = await create(client, payload)
    await clock.advance(1.0)
    view = await status_of(client, job_id)
    assert view["segment_count"] == 3 and [s["id"] for s in view["segments"]] == [0, 1, 2]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ([1, 2], "JSON object"),
        ({**body("x"), "mode": "summarization"}, "mode"),
        ({k: v for k, v in body("x").items() if k != "mode"}, "mode"),
        ({k: v for k, v in body("x").items() if k != "source_lang"}, "source_lang"),
        ({k: v for k, v in body("x").items() if k != "target_lang"}, "target_lang"),
        ({**body("x"), "target_lang": 7}, "target_lang"),
        ({**body("x"), "source_lang": "  "}, "source_lang"),
        ({"mode": "translation", "source_lang": "de", "target_lang": "en"}, "text"),
        ({**body("x"), "text": "both"}, "text"),
        (body(), "texts"),
        ({**body("x"), "texts": "not a list"}, "texts"),
        ({**body("x"), "texts": ["ok", 3]}, "texts"),
        ({**body("x"), "texts": ["ok", ""]}, "texts"),
        ({"mode": "translation", "source_lang": "de", "target_lang": "en", "text": "   "}, "text"),
        ({"mode": "translation", "source_lang": "de", "target_lang": "en", "text": 5}, "text"),
        ({**body("x"), "glossary": ["a"]}, "glossary"),
        ({**body("x"), "glossary": {"a": 1}}, "glossary"),
        ({**body("x"), "instructions": 1}, "instructions"),
        ({**body("x"), "source_review": "yes"}, "source_review"),
        ({**body("x"), "texts": ["t"] * 501}, "at most"),
    ],
)
async def test_invalid_create_bodies_get_422_with_a_detail(client: TestClient, payload: Any, detail: str) -> None:
    resp = await client.post(f"{PREFIX}/v1/jobs", json=payload, headers=KEY)
    assert resp.status == 422
    answer = await resp.json()
    assert set(answer) == {"detail"} and isinstance(answer["detail"], str) and detail in answer["detail"]


async def test_a_body_that_is_not_json_gets_400(client: TestClient) -> None:
    resp = await client.post(f"{PREFIX}/v1/jobs", data=b"{nope", headers=KEY)
    assert resp.status == 400
    assert isinstance((await resp.json())["detail"], str)


async def test_duplicate_content_answers_409_with_the_earlier_job(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Gleicher Text.", "Noch einer."))
    await clock.advance(1.0)
    resp = await client.post(f"{PREFIX}/v1/jobs", json=body("Gleicher Text.", "Noch einer."), headers=KEY)
    assert resp.status == 409
    assert await resp.json() == {"detail": "Duplicate content", "job_id": job_id, "status": "processing"}
    # other languages, other texts or another order are other content
    assert await create(client, {**body("Gleicher Text.", "Noch einer."), "target_lang": "fr"}) != job_id
    assert await create(client, body("Noch einer.", "Gleicher Text.")) != job_id


async def test_a_dead_jobs_content_may_be_submitted_again(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("DEAD end"))
    views = await run_to_end(client, clock, job_id)
    assert views[-1]["status"] == "dead"
    assert await create(client, body("DEAD end")) != job_id


# -- auth and unknown ids -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}, {"X-API-Key": "invalid"}, {"Authorization": "Bearer k"}])
@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("GET", "/v1/jobs/{id}/result")]
)
async def test_missing_or_invalid_key_gets_401(
    client: TestClient, headers: dict[str, str], method: str, path: str
) -> None:
    job_id = await create(client, body(f"auth {method} {path} {headers}"))
    resp = await client.request(method, PREFIX + path.format(id=job_id), json=body("y"), headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"detail": "Missing or invalid API key"}


@pytest.mark.parametrize("path", ["/v1/jobs/nope", "/v1/jobs/nope/result"])
async def test_unknown_job_gets_404(client: TestClient, path: str) -> None:
    resp = await client.get(PREFIX + path, headers=KEY)
    assert resp.status == 404
    assert await resp.json() == {"detail": "Job not found"}


# -- progression ---------------------------------------------------------------------------------------------------
async def test_a_clean_job_progresses_to_completed(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Die Qualität spricht für sich.", "Wir liefern pünktlich."))
    views = await run_to_end(client, clock, job_id)
    assert timeline(views) == [
        ("queued", None),
        ("processing", "supervisor"),
        ("processing", "translator"),
        ("processing", "qa"),
        ("processing", "finalizing"),
        ("completed", None),
    ]
    segment_states = [[s["status"] for s in v["segments"]] for v in views[:7]]
    assert segment_states == [
        [],
        ["pending", "pending"],
        ["processing", "processing"],
        ["translated", "translated"],
        ["qa_passed", "qa_passed"],
        ["done", "done"],
        ["done", "done"],
    ]
    tokens = [v["token_usage"]["input_tokens"] + v["token_usage"]["output_tokens"] for v in views[:6]]
    costs = [v["cost_eur"] for v in views[:6]]
    assert tokens == sorted(tokens) and tokens[0] == 0 and tokens[-1] > tokens[1] > 0
    assert costs == sorted(costs) and costs[-1] > costs[1] > 0
    final = views[-1]
    assert final["finished_at"] and final["started_at"] and final["segment_count"] == 2
    assert all(isinstance(s["qa_score"], float) for s in final["segments"])


async def test_source_review_step_when_asked(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Quelle prüfen.", source_review=True))
    views = await run_to_end(client, clock, job_id)
    assert ("processing", "source_review") in timeline(views)
    assert views[0]["source_review_enabled"] is True and views[-1]["status"] == "completed"


async def test_block_marker_ends_completed_with_blocks(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Ein BLOCK hier.", "Alles gut."))
    views = await run_to_end(client, clock, job_id)
    final = views[-1]
    assert final["status"] == "completed_with_blocks"
    blocked, fine = final["segments"]
    assert blocked["status"] == "blocked" and blocked["error"] and fine["status"] == "done"
    result = await (await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)).json()
    assert result["status"] == "completed_with_blocks"
    assert [(s["status"], s["translation"]) for s in result["segments"]] == [
        ("blocked", None),
        ("done", "[en] Alles gut."),
    ]


async def test_lowq_marker_corrects_then_needs_review(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("LOWQ Satz.", "Gut."))
    views = await run_to_end(client, clock, job_id)
    steps = timeline(views)
    assert ("correcting", "translator") in steps and steps[-1] == ("needs_review", None)
    assert views[-1]["segments"][0]["retry_count"] == 1
    result = await (await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)).json()
    assert isinstance(result["warning"], str) and result["warning"]
    assert result["delivery_notes"] == [
        {
            "type": "low_confidence",
            "segment_id": 0,
            "message": "QA score 68.0 is below the minimum of 85.0",
            "suggestion": "Have a reviewer check this segment",
        }
    ]


async def test_retry_marker_passes_through_failed_once(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("RETRY bitte."))
    views = await run_to_end(client, clock, job_id)
    statuses = [s for s, _ in timeline(views)]
    assert statuses.count("failed") == 1 and statuses[-1] == "completed"
    failed = next(v for v in views if v["status"] == "failed")
    assert failed["error_log"] and failed["current_step"] is None
    assert views[-1]["segments"][0]["retry_count"] == 1


async def test_dead_marker_ends_dead_without_a_result(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("DEAD Satz.", "Anderer."))
    views = await run_to_end(client, clock, job_id)
    assert timeline(views) == [
        ("queued", None),
        ("processing", "supervisor"),
        ("processing", "translator"),
        ("failed", None),
        ("processing", "translator"),
        ("dead", None),
    ]
    final = views[-1]
    assert len(final["error_log"]) == 2 and final["finished_at"]
    assert final["segments"][0]["status"] == "failed" and final["segments"][0]["error"]
    resp = await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)
    assert resp.status == 409 and (await resp.json())["status"] == "dead"


# -- result -----------------------------------------------------------------------------------------------------
async def test_result_is_409_with_the_status_until_complete(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Ergebnis."))
    for expected in ("queued", "processing"):
        resp = await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)
        assert resp.status == 409
        answer = await resp.json()
        assert answer["status"] == expected and isinstance(answer["detail"], str)
        await clock.advance(1.0)


async def test_result_of_a_completed_job_has_the_documented_shape(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Die Qualität spricht.", "Zwei Wörter."))
    views = await run_to_end(client, clock, job_id)
    resp = await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)
    assert resp.status == 200
    result = await resp.json()
    assert set(result) == RESULT_FIELDS
    assert result["job_id"] == job_id and result["status"] == "completed" and result["warning"] is None
    assert result["translation"] == "[en] Die Qualität spricht. [en] Zwei Wörter."
    assert [set(s) for s in result["segments"]] == [{"id", "source", "translation", "qa_score", "status"}] * 2
    assert [s["qa_score"] for s in result["segments"]] == [s["qa_score"] for s in views[-1]["segments"]]
    usage = views[-1]["token_usage"]
    assert result["token_usage"]["input"] == usage["input_tokens"]
    assert result["token_usage"]["output"] == usage["output_tokens"]
    assert result["token_usage"]["total"] == usage["input_tokens"] + usage["output_tokens"]
    assert set(result["token_usage"]) == {"input", "output", "cache_read", "cache_write", "total"}
    assert result["cost_eur"] == views[-1]["cost_eur"]
    assert result["word_count"] == {"source": 5, "target": 7}
    assert result["delivery_notes"] == []


# -- control API --------------------------------------------------------------------------------------------------
async def test_forcing_a_state_pins_the_job(client: TestClient, clock: FakeClock) -> None:
    job_id = await create(client, body("Erzwungen."))
    resp = await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "needs_review", "warning": "w"})
    assert resp.status == 200
    await clock.advance(10.0)
    view = await status_of(client, job_id)
    assert (view["status"], view["warning"]) == ("needs_review", "w")
    result = await (await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)).json()
    assert (result["status"], result["warning"]) == ("needs_review", "w")
    assert [s["status"] for s in result["segments"]] == ["done"]


async def test_forced_blocked_segments_show_in_the_result(client: TestClient) -> None:
    job_id = await create(client, body("Eins.", "Zwei."))
    patch = {"status": "completed_with_blocks", "segments": [{"id": 1, "status": "blocked", "error": "tags"}]}
    await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json=patch)
    result = await (await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)).json()
    assert [s["status"] for s in result["segments"]] == ["done", "blocked"]


async def test_forcing_an_unknown_job_is_404(client: TestClient) -> None:
    resp = await client.post(f"{PREFIX}/__sim__/jobs/nope/state", json={"status": "dead"})
    assert resp.status == 404


# -- faults and stats ---------------------------------------------------------------------------------------------
async def test_stats_count_requests_by_route_template(client: TestClient) -> None:
    job_id = await create(client, body("Zählen."))
    await status_of(client, job_id)
    await status_of(client, job_id)
    await client.get(f"{PREFIX}/v1/jobs/{job_id}/result", headers=KEY)
    await client.get(f"{PREFIX}/v1/jobs/{job_id}", headers={})  # refused, still counted
    stats = await (await client.get(f"{PREFIX}/__sim__/stats")).json()
    assert stats == {"requests": {"POST /v1/jobs": 1, "GET /v1/jobs/{job_id}": 3, "GET /v1/jobs/{job_id}/result": 1}}
