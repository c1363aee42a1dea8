"""The CAMB.AI simulator over HTTP: documented requests, auth, errors, progression, control API and faults."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorFactory, VendorHarness
from providers.camb.simulator import FINISH_STEP, SOURCE_LANGUAGES, TARGET_LANGUAGES

PREFIX = "/camb/apis"
KEY = {"x-api-key": "sim-key-camb"}
BODY = {"source_language": 1, "target_language": 31, "texts": ["Hello world", "How are you?"]}

Factory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("camb", step_s=1.0)


async def call(client: TestClient, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    kw.setdefault("headers", KEY)
    async with client.request(method, PREFIX + path, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def submit(client: TestClient, **changes: Any) -> str:
    status, body = await call(client, "POST", "/translate", json={**BODY, **changes})
    assert status == 200, body
    assert set(body) == {"task_id"} and isinstance(body["task_id"], str)
    return body["task_id"]


@pytest.mark.parametrize(
    ("path", "expected"), [("/source-languages", SOURCE_LANGUAGES), ("/target-languages", TARGET_LANGUAGES)]
)
async def test_language_lists(client: TestClient, path: str, expected: list[dict[str, Any]]) -> None:
    status, body = await call(client, "GET", path)
    assert status == 200
    assert body == expected
    for item in body:
        assert set(item) == {"id", "language", "short_name"}
        assert isinstance(item["id"], int) and isinstance(item["language"], str) and isinstance(item["short_name"], str)
    assert {"en-us", "de-de", "fr-fr", "es-es", "ja-jp"} <= {item["short_name"] for item in body}


def test_source_languages_are_a_subset_of_target_languages() -> None:
    source = {item["id"] for item in SOURCE_LANGUAGES}
    target = {item["id"] for item in TARGET_LANGUAGES}
    assert source < target


async def test_progression_pending_then_success_with_run_id_and_result(client: TestClient, clock: FakeClock) -> None:
    task_id = await submit(client)
    seen = []
    for _ in range(FINISH_STEP + 2):
        status, body = await call(client, "GET", f"/translate/{task_id}")
        assert status == 200
        seen.append(body["status"])
        if body["status"] == "PENDING":
            assert body["run_id"] is None
        await clock.advance(1.0)
    assert seen[:FINISH_STEP] == ["PENDING"] * FINISH_STEP
    assert seen[FINISH_STEP:] == ["SUCCESS", "SUCCESS"]
    run_id = body["run_id"]
    assert isinstance(run_id, int) and not isinstance(run_id, bool)
    status, result = await call(client, "GET", f"/translation-result/{run_id}")
    assert status == 200
    assert result == {"texts": ["[de] Hello world", "[de] How are you?"]}


@pytest.mark.parametrize(
    ("marker", "final"), [("FAIL_ERROR", "ERROR"), ("FAIL_TIMEOUT", "TIMEOUT"), ("FAIL_PAYMENT", "PAYMENT_REQUIRED")]
)
async def test_failure_markers(client: TestClient, clock: FakeClock, marker: str, final: str) -> None:
    task_id = await submit(client, texts=["fine", f"please {marker} now"])
    assert (await call(client, "GET", f"/translate/{task_id}"))[1]["status"] == "PENDING"
    await clock.advance(FINISH_STEP)
    status, body = await call(client, "GET", f"/translate/{task_id}")
    assert (status, body) == (200, {"status": final, "run_id": None})


async def test_result_order_and_target_tag(client: TestClient, clock: FakeClock) -> None:
    texts = [f"line {i}" for i in range(7)]
    task_id = await submit(client, source_language=96, target_language=145, texts=texts)
    await clock.advance(FINISH_STEP)
    run_id = (await call(client, "GET", f"/translate/{task_id}"))[1]["run_id"]
    _, result = await call(client, "GET", f"/translation-result/{run_id}")
    assert result["texts"] == [f"[ar] line {i}" for i in range(7)]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/source-languages", None),
        ("GET", "/target-languages", None),
        ("POST", "/translate", BODY),
        ("GET", "/translate/some-task", None),
        ("GET", "/translation-result/1", None),
    ],
)
@pytest.mark.parametrize(
    "headers", [{}, {"x-api-key": "invalid"}, {"x-api-key": ""}], ids=["missing", "invalid", "empty"]
)
async def test_auth_401(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> None:
    status, answer = await call(client, method, path, json=body, headers=headers)
    assert status == 401
    assert isinstance(answer["detail"], str)


async def test_other_auth_headers_do_not_count(client: TestClient) -> None:
    status, _ = await call(client, "GET", "/source-languages", headers={"Authorization": "Bearer sim-key-camb"})
    assert status == 401


async def test_unknown_ids_404(client: TestClient, clock: FakeClock) -> None:
    status, body = await call(client, "GET", "/translate/no-such-task")
    assert status == 404 and isinstance(body["detail"], str)
    status, body = await call(client, "GET", "/translation-result/424242")
    assert status == 404 and isinstance(body["detail"], str)
    # a run id exists only once its task succeeded
    task_id = await submit(client, texts=["FAIL_ERROR"])
    await clock.advance(FINISH_STEP)
    assert (await call(client, "GET", f"/translate/{task_id}"))[1]["run_id"] is None
    status, _ = await call(client, "GET", "/translation-result/None")
    assert status == 404


INVALID = [
    ({k: v for k, v in BODY.items() if k != "texts"}, ["body", "texts"], "missing"),
    ({**BODY, "texts": "Hello"}, ["body", "texts"], "list_type"),
    ({**BODY, "texts": []}, ["body", "texts"], "too_short"),
    ({**BODY, "texts": ["ok", 3]}, ["body", "texts", 1], "string_type"),
    ({k: v for k, v in BODY.items() if k != "source_language"}, ["body", "source_language"], "missing"),
    ({**BODY, "source_language": "en-us"}, ["body", "source_language"], "int_type"),
    ({**BODY, "source_language": True}, ["body", "source_language"], "int_type"),
    ({**BODY, "source_language": 999999}, ["body", "source_language"], "value_error"),
    ({**BODY, "source_language": 145}, ["body", "source_language"], "value_error"),  # target-only language
    ({**BODY, "target_language": 999999}, ["body", "target_language"], "value_error"),
    ({**BODY, "formality": 3}, ["body", "formality"], "enum"),
    ({**BODY, "formality": "1"}, ["body", "formality"], "enum"),
    ({**BODY, "gender": 5}, ["body", "gender"], "enum"),
    ({**BODY, "age": "old"}, ["body", "age"], "int_type"),
    (["not", "an", "object"], ["body"], "dict_type"),
]


@pytest.mark.parametrize(("body", "loc", "type_"), INVALID, ids=repr)
async def test_validation_422(client: TestClient, body: Any, loc: list[Any], type_: str) -> None:
    status, answer = await call(client, "POST", "/translate", json=body)
    assert status == 422
    assert isinstance(answer["detail"], list) and answer["detail"]
    first = answer["detail"][0]
    assert set(first) == {"loc", "msg", "type"}
    assert (first["loc"], first["type"]) == (loc, type_)
    assert isinstance(first["msg"], str) and first["msg"]


async def test_validation_collects_every_error_and_non_json(client: TestClient) -> None:
    status, answer = await call(client, "POST", "/translate", json={"formality": 0, "gender": 3})
    assert status == 422
    locs = [tuple(e["loc"]) for e in answer["detail"]]
    assert locs == [
        ("body", "source_language"),
        ("body", "target_language"),
        ("body", "texts"),
        ("body", "formality"),
        ("body", "gender"),
    ]
    status, answer = await call(client, "POST", "/translate", data=b"{not json", headers={**KEY})
    assert status == 422 and answer["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("extra", [{"formality": 1}, {"formality": 2}, {"gender": 9}, {"gender": 0, "age": 30}])
async def test_optional_fields_accepted(client: TestClient, extra: dict[str, Any]) -> None:
    await submit(client, **extra)


async def test_control_api_forces_state_and_stops_progression(client: TestClient, clock: FakeClock) -> None:
    task_id = await submit(client)
    async with client.post(f"{PREFIX}/__sim__/jobs/{task_id}/state", json={"status": "TIMEOUT"}) as resp:
        assert resp.status == 200
    await clock.advance(10 * FINISH_STEP)
    assert (await call(client, "GET", f"/translate/{task_id}"))[1] == {"status": "TIMEOUT", "run_id": None}

    other = await submit(client)
    patch = {"status": "SUCCESS", "run_id": 777001}
    async with client.post(f"{PREFIX}/__sim__/jobs/{other}/state", json=patch) as resp:
        assert resp.status == 200
    assert (await call(client, "GET", f"/translate/{other}"))[1] == patch
    _, result = await call(client, "GET", "/translation-result/777001")
    assert result == {"texts": ["[de] Hello world", "[de] How are you?"]}

    async with client.post(f"{PREFIX}/__sim__/jobs/unknown/state", json=patch) as resp:
        assert resp.status == 404


async def test_forced_success_without_run_id_gets_one(client: TestClient) -> None:
    task_id = await submit(client)
    async with client.post(f"{PREFIX}/__sim__/jobs/{task_id}/state", json={"status": "SUCCESS"}) as resp:
        assert resp.status == 200
    _, body = await call(client, "GET", f"/translate/{task_id}")
    assert body["status"] == "SUCCESS" and isinstance(body["run_id"], int)
    assert (await call(client, "GET", f"/translate/{task_id}"))[1]["run_id"] == body["run_id"]
    status, _ = await call(client, "GET", f"/translation-result/{body['run_id']}")
    assert status == 200


async def test_stats_count_requests_by_template(client: TestClient, clock: FakeClock) -> None:
    task_id = await submit(client)
    await call(client, "GET", f"/translate/{task_id}")
    await call(client, "GET", f"/translate/{task_id}")
    await call(client, "GET", "/source-languages")
    await clock.advance(FINISH_STEP)
    run_id = (await call(client, "GET", f"/translate/{task_id}"))[1]["run_id"]
    await call(client, "GET", f"/translation-result/{run_id}")
    async with client.get(f"{PREFIX}/__sim__/stats") as resp:
        stats = (await resp.json())["requests"]
    assert stats == {
        "POST /translate": 1,
        "GET /translate/{task_id}": 3,
        "GET /source-languages": 1,
        "GET /translation-result/{run_id}": 1,
    }
