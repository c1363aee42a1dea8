"""The Datafold DMA v2 simulator over HTTP: routes, auth, error bodies, progression, control API, faults."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorFactory, VendorHarness
from providers.datafold.client import DatafoldProvider
from providers.datafold.models import FAILURE_REASONS, ApiTranslateTask
from providers.datafold.simulator import DEFAULT_ASSETS, DatafoldSimulator

PREFIX = "/datafold"
AUTH = {"Authorization": "Key sim-key-datafold"}
JOBS = PREFIX + "/api/v1/dma/v2/projects/{pid}/translate/jobs"
JOB = JOBS + "/{job_id}"
JOBS_TEMPLATE = "POST /api/v1/dma/v2/projects/{project_id}/translate/jobs"
JOB_TEMPLATE = "GET /api/v1/dma/v2/projects/{project_id}/translate/jobs/{job_id}"


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("datafold", step_s=1.0)


async def create(client: Any, body: Any = None, pid: Any = 7) -> dict[str, Any]:
    resp = await client.post(JOBS.format(pid=pid), json={} if body is None else body, headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def status(client: Any, job_id: str, pid: Any = 7) -> dict[str, Any]:
    resp = await client.get(JOB.format(pid=pid, job_id=job_id), headers=AUTH)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- documented requests -----------------------------------------------------------------------------------


async def test_submit_answers_an_api_translate_task(client: Any) -> None:
    body = await create(client, {"asset_paths": ["models/orders.sql"], "concurrency": 4, "fail_fast": False})
    assert set(body) == {"status", "task_id", "translated_models"}
    assert body["status"] == "waiting"
    assert isinstance(body["task_id"], str) and body["task_id"]
    assert body["translated_models"] is None
    ApiTranslateTask.model_validate(body)


async def test_submit_accepts_every_documented_field_and_an_empty_body(client: Any) -> None:
    full = {
        "asset_paths": ["models/a.sql"],
        "concurrency": 12,
        "drop_unresolved": ["x"],
        "fail_fast": True,
        "identity": {"user": "ci"},
        "include_unverified": ["y"],
        "max_iterations": 5,
        "preserve_dbt_temp_dirs": False,
        "recreate_all": True,
        "stages": ["translate", "validate"],
        "transform_group_ids": ["g1"],
    }
    assert (await create(client, full))["status"] == "waiting"
    assert (await create(client, {}))["status"] == "waiting"


async def test_status_answers_the_job(client: Any) -> None:
    job = await create(client)
    got = await status(client, job["task_id"])
    assert got == job


async def test_job_ids_are_distinct(client: Any) -> None:
    ids = {(await create(client))["task_id"] for _ in range(5)}
    assert len(ids) == 5


# -- auth ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Key invalid"},
        {"Authorization": "Key "},
        {"Authorization": "Bearer sim-key-datafold"},
        {"Authorization": "sim-key-datafold"},
        {"X-API-Key": "sim-key-datafold"},
    ],
    ids=["missing", "invalid", "empty", "bearer", "no-scheme", "other-header"],
)
async def test_auth_refused(client: Any, headers: dict[str, str]) -> None:
    for resp in (
        await client.post(JOBS.format(pid=7), json={}, headers=headers),
        await client.get(JOB.format(pid=7, job_id="whatever"), headers=headers),
    ):
        assert resp.status == 401
        assert await resp.json() == {"detail": "Not authenticated"}


async def test_auth_scheme_is_case_insensitive(client: Any) -> None:
    resp = await client.post(JOBS.format(pid=7), json={}, headers={"Authorization": "key sim-key-datafold"})
    assert resp.status == 200


async def test_auth_is_checked_before_validation(client: Any) -> None:
    resp = await client.post(JOBS.format(pid="abc"), json={"asset_paths": 1})
    assert resp.status == 401


# -- not found and validation ----------------------------------------------------------------------------------


async def test_unknown_job_is_404(client: Any) -> None:
    resp = await client.get(JOB.format(pid=7, job_id="00000000-0000-4000-8000-000000000000"), headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {"detail": "Not Found"}


async def test_job_of_another_project_is_404(client: Any) -> None:
    job = await create(client, pid=7)
    resp = await client.get(JOB.format(pid=8, job_id=job["task_id"]), headers=AUTH)
    assert resp.status == 404
    assert await resp.json() == {"detail": "Not Found"}


def assert_fastapi_422(body: Any) -> list[dict[str, Any]]:
    assert isinstance(body, dict) and set(body) == {"detail"}
    assert isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert {"loc", "msg", "type"} <= set(item)
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str) and isinstance(item["type"], str)
    return body["detail"]


@pytest.mark.parametrize("pid", ["abc", "1.5", "x1"])
async def test_non_integer_project_id_is_422(client: Any, pid: str) -> None:
    for resp in (
        await client.post(JOBS.format(pid=pid), json={}, headers=AUTH),
        await client.get(JOB.format(pid=pid, job_id="j"), headers=AUTH),
    ):
        assert resp.status == 422
        detail = assert_fastapi_422(await resp.json())
        assert [d["loc"] for d in detail] == [["path", "project_id"]]
        assert detail[0]["type"] == "int_parsing"
        assert detail[0]["input"] == pid


@pytest.mark.parametrize(
    ("body", "loc", "type_"),
    [
        ({"asset_paths": "models/a.sql"}, ["body", "asset_paths"], "list_type"),
        ({"asset_paths": [1]}, ["body", "asset_paths", 0], "string_type"),
        ({"concurrency": "lots"}, ["body", "concurrency"], "int_parsing"),
        ({"fail_fast": "maybe"}, ["body", "fail_fast"], "bool_parsing"),
        ({"max_iterations": [3]}, ["body", "max_iterations"], "int_type"),
        ({"recreate_all": {}}, ["body", "recreate_all"], "bool_type"),
        ({"stages": "translate"}, ["body", "stages"], "list_type"),
    ],
)
async def test_bad_body_field_is_422(client: Any, body: dict[str, Any], loc: list[Any], type_: str) -> None:
    resp = await client.post(JOBS.format(pid=7), json=body, headers=AUTH)
    assert resp.status == 422
    detail = assert_fastapi_422(await resp.json())
    assert [(d["loc"], d["type"]) for d in detail] == [(loc, type_)]


async def test_path_and_body_errors_are_reported_together(client: Any) -> None:
    resp = await client.post(JOBS.format(pid="abc"), json={"concurrency": "lots"}, headers=AUTH)
    detail = assert_fastapi_422(await resp.json())
    assert [d["loc"] for d in detail] == [["path", "project_id"], ["body", "concurrency"]]


async def test_missing_malformed_and_non_object_bodies_are_422(client: Any, sim: DatafoldSimulator) -> None:
    url = JOBS.format(pid=7)
    missing = await client.post(url, headers=AUTH)
    assert missing.status == 422
    assert assert_fastapi_422(await missing.json())[0]["loc"] == ["body"]
    broken = await client.post(url, data=b'{"asset_paths": [', headers={**AUTH, "Content-Type": "application/json"})
    assert broken.status == 422
    item = assert_fastapi_422(await broken.json())[0]
    assert item["type"] == "json_invalid" and item["loc"][0] == "body"
    listed = await client.post(url, json=["models/a.sql"], headers=AUTH)
    assert listed.status == 422
    assert assert_fastapi_422(await listed.json())[0]["loc"] == ["body"]
    assert sim.jobs == {}  # nothing was created


# -- progression ----------------------------------------------------------------------------------------------


async def test_progression_over_time(client: Any, clock: FakeClock) -> None:
    job = await create(client, {"asset_paths": ["models/staging/stg_orders.sql", "models/marts/revenue.sql"]})
    job_id = job["task_id"]
    assert (await status(client, job_id))["status"] == "waiting"
    await clock.advance(1.0)
    listed = await status(client, job_id)
    assert listed["status"] == "processing"
    assert [m["translation_status"] for m in listed["translated_models"]] == ["no_translation_attempts"] * 2
    assert all(m["target_sql"] is None and "SELECT" in m["source_sql"] for m in listed["translated_models"])
    await clock.advance(1.0)
    pending = await status(client, job_id)
    assert pending["status"] == "processing"
    assert [m["translation_status"] for m in pending["translated_models"]] == ["validation_pending"] * 2
    await clock.advance(1.0)
    done = await status(client, job_id)
    assert done["status"] == "done"
    models = done["translated_models"]
    assert [m["asset_name"] for m in models] == ["stg_orders", "revenue"]
    assert [m["source_filename"] for m in models] == ["models/staging/stg_orders.sql", "models/marts/revenue.sql"]
    for m in models:
        assert m["translation_status"] == "valid_translation"
        assert m["failure_summary"] is None
        assert isinstance(m["datadiff_id"], int)
        assert m["asset_id"]
        assert "FROM dbo." in m["source_sql"] and "TOP 1000" in m["source_sql"]
        assert "FROM analytics." in m["target_sql"] and "LIMIT 1000" in m["target_sql"]
    ApiTranslateTask.model_validate(done)
    await clock.advance(10.0)
    assert await status(client, job_id) == done  # done is final


async def test_default_assets_give_two_models(client: Any, clock: FakeClock) -> None:
    job = await create(client, {})
    await clock.advance(3.0)
    done = await status(client, job["task_id"])
    assert done["status"] == "done"
    assert [m["source_filename"] for m in done["translated_models"]] == list(DEFAULT_ASSETS)


async def test_invalid_assets_get_an_invalid_translation_with_a_failure_summary(client: Any, clock: FakeClock) -> None:
    paths = ["models/ok.sql", "models/invalid_a.sql", "models/INVALID_b.sql", "models/c_invalid.sql"]
    job = await create(client, {"asset_paths": paths})
    await clock.advance(3.0)
    done = await status(client, job["task_id"])
    assert done["status"] == "done"
    ok, *bad = done["translated_models"]
    assert ok["translation_status"] == "valid_translation"
    reasons = []
    for m in bad:
        assert m["translation_status"] == "invalid_translation"
        assert m["datadiff_id"] is None
        summary = m["failure_summary"]
        assert set(summary) == {"error_message", "location", "problem", "reason", "solution"}
        assert all(isinstance(summary[k], str) and summary[k] for k in summary)
        reasons.append(summary["reason"])
    assert sorted(reasons) == sorted(FAILURE_REASONS)
    assert DatafoldProvider().normalize(done).state == "completed_with_issues"


async def test_fail_fast_fails_at_the_first_invalid_model(client: Any, clock: FakeClock) -> None:
    paths = ["models/ok.sql", "models/invalid_x.sql", "models/later.sql"]
    job = await create(client, {"asset_paths": paths, "fail_fast": True})
    await clock.advance(3.0)
    got = await status(client, job["task_id"])
    assert got["status"] == "failed"
    assert [m["translation_status"] for m in got["translated_models"]] == [
        "valid_translation",
        "invalid_translation",
        "no_translation_attempts",
    ]


# -- control API --------------------------------------------------------------------------------------------


async def test_state_forcing_pins_the_job(client: Any, clock: FakeClock) -> None:
    job = await create(client)
    resp = await client.post(PREFIX + f"/__sim__/jobs/{job['task_id']}/state", json={"status": "needs_confirmation"})
    assert resp.status == 200
    assert (await status(client, job["task_id"]))["status"] == "needs_confirmation"
    await clock.advance(100.0)
    got = await status(client, job["task_id"])
    assert got["status"] == "needs_confirmation"
    assert got["translated_models"] is None


async def test_state_forcing_unknown_job_is_404(client: Any) -> None:
    resp = await client.post(PREFIX + "/__sim__/jobs/nope/state", json={"status": "done"})
    assert resp.status == 404


# -- faults and stats --------------------------------------------------------------------------------------


async def test_stats_count_requests_by_template(client: Any) -> None:
    job = await create(client)
    await create(client, pid=9)
    await status(client, job["task_id"])
    await client.get(JOB.format(pid=7, job_id="unknown"), headers=AUTH)
    await client.get(JOB.format(pid=7, job_id="unknown"))  # 401 still counts
    stats = await (await client.get(PREFIX + "/__sim__/stats")).json()
    assert stats == {"requests": {JOBS_TEMPLATE: 2, JOB_TEMPLATE: 3}}
