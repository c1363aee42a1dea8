"""The Datafold provider's async methods against the live simulator (shared vendor faults: test_vendor_faults.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from pydantic import ValidationError

from gateway.errors import (
    InputError,
    UnsupportedOperation,
    VendorMalformed,
    VendorNotFound,
    VendorValidationError,
)
from gateway.states import State
from gateway.testing.harness import VendorFactory, VendorHarness
from gateway.vendor_http import VendorConnection
from providers.datafold.client import DatafoldConfig, DatafoldProvider
from providers.datafold.simulator import DatafoldSimulator
from support.refusals import refused_before_sending

PROVIDER = DatafoldProvider()


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("datafold")


@pytest.fixture
def conn(harness: VendorHarness) -> VendorConnection:
    return harness.connect(project_id=7)


# -- description and config ----------------------------------------------------------------------------------


def test_description() -> None:
    info = PROVIDER.describe()
    assert info["name"] == "datafold" and info["display_name"] == "Datafold DMA v2"
    assert info["capabilities"] == {
        "submit": True,
        "status": True,
        "result": True,
        "cancel": False,
        "artifact": False,
        "progress": False,
        "input_kinds": ["native"],
    }
    assert PROVIDER.sim_prefix == "/datafold"
    assert PROVIDER.config_model is DatafoldConfig
    assert isinstance(PROVIDER.simulator(0.5), DatafoldSimulator)


def test_config_project_id() -> None:
    assert DatafoldConfig(base_url="https://app.datafold.com").project_id is None
    assert DatafoldConfig(base_url="https://app.datafold.com", project_id=12).project_id == 12
    for bad in (0, -1, "abc", 1.5):
        with pytest.raises(ValidationError):
            DatafoldConfig(base_url="https://app.datafold.com", project_id=bad)
    with pytest.raises(ValidationError):
        DatafoldConfig(base_url="https://app.datafold.com", projectid=1)


def test_auth_header(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PROVIDER.auth_headers("sim-key-datafold") == {"Authorization": "Key sim-key-datafold"}
    assert PROVIDER.auth_headers(None) == {}


# -- submit ------------------------------------------------------------------------------------------------


async def test_submit_native_input(conn: VendorConnection, harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(conn, {"project_id": 31, "asset_paths": ["models/orders.sql"], "concurrency": 3})
    assert set(ref) == {"project_id", "job_id"}
    assert ref["project_id"] == 31
    job = harness.sim.jobs[ref["job_id"]]
    assert job.private["project_id"] == 31
    request = job.private["request"]
    assert request.asset_paths == ["models/orders.sql"] and request.concurrency == 3
    assert "project_id" not in request.model_dump()  # project_id goes into the path, not the body


async def test_submit_defaults_to_the_configured_project(conn: VendorConnection, harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/a.sql"]})
    assert ref["project_id"] == 7
    ref_none = await PROVIDER.submit(conn, {"project_id": None})
    assert ref_none["project_id"] == 7
    assert (await harness.stats())["POST /api/v1/dma/v2/projects/{project_id}/translate/jobs"] == 2


async def test_submit_accepts_a_digit_string_project_id(conn: VendorConnection) -> None:
    assert (await PROVIDER.submit(conn, {"project_id": "55"}))["project_id"] == 55


async def test_submit_without_any_project_is_refused_before_sending(harness: VendorHarness) -> None:
    conn = harness.connect()  # no project_id configured
    await refused_before_sending(
        harness, lambda: PROVIDER.submit(conn, {"asset_paths": ["models/a.sql"]}), ["input", "project_id"]
    )


@pytest.mark.parametrize(
    ("input_", "loc"),
    [
        ({"kind": "text", "source_language": "en", "target_language": "de", "texts": ["hi"]}, ["input", "kind"]),
        ({"kind": "document", "filename": "a.pdf", "content_base64": "AA=="}, ["input", "kind"]),
        ({"project_id": "abc"}, ["input", "project_id"]),
        ({"project_id": 0}, ["input", "project_id"]),
        ({"project_id": True}, ["input", "project_id"]),
        ({"project_id": "1/../2"}, ["input", "project_id"]),
        ({"project_id": 2.5}, ["input", "project_id"]),
        (["not", "an", "object"], ["input"]),
    ],
)
async def test_submit_refuses_unusable_input_before_sending(
    conn: VendorConnection, harness: VendorHarness, input_: Any, loc: list[str]
) -> None:
    await refused_before_sending(harness, lambda: PROVIDER.submit(conn, input_), loc)


async def test_submit_vendor_validation_error_carries_the_vendor_detail(conn: VendorConnection) -> None:
    with pytest.raises(VendorValidationError) as info:
        await PROVIDER.submit(conn, {"asset_paths": "models/a.sql", "concurrency": "lots"})
    err = info.value
    assert err.status == 422 and err.problem_code == "validation_error"
    assert [e["loc"] for e in err.errors] == [["input", "asset_paths"], ["input", "concurrency"]]
    assert all(e["msg"] for e in err.errors)


# -- status and result ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "state"),
    [
        ({"status": "waiting"}, State.QUEUED),
        ({"status": "processing"}, State.RUNNING),
        ({"status": "needs_confirmation"}, State.ACTION_REQUIRED),
        ({"status": "needs_authentication"}, State.ACTION_REQUIRED),
        ({"status": "cancelled"}, State.CANCELLED),
    ],
)
async def test_status_and_normalize(
    conn: VendorConnection, harness: VendorHarness, patch: dict[str, Any], state: State
) -> None:
    ref = await PROVIDER.submit(conn, {})
    await harness.force(ref["job_id"], patch)
    body = await PROVIDER.fetch_status(conn, ref)
    assert body["task_id"] == ref["job_id"]
    assert PROVIDER.normalize(body).state is state


async def test_natural_progression_to_a_result(harness: VendorHarness) -> None:
    harness.sim.step_s = 1.0
    conn = harness.connect(project_id=3)
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/stg_orders.sql", "models/invalid_refunds.sql"]})
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).state is State.QUEUED
    await harness.clock.advance(1.5)
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).state is State.RUNNING
    await harness.clock.advance(2.0)
    body = await PROVIDER.fetch_status(conn, ref)
    canonical = PROVIDER.normalize(body)
    assert canonical.state is State.COMPLETED_WITH_ISSUES
    (issue,) = canonical.issues
    assert issue.code == "invalid_translation" and issue.target == "invalid_refunds" and issue.hint
    result = await PROVIDER.fetch_result(conn, ref, body)
    assert [(o.name, o.status) for o in result.outputs] == [
        ("stg_orders", "valid_translation"),
        ("invalid_refunds", "invalid_translation"),
    ]
    assert result.outputs[0].source is not None and "SELECT" in result.outputs[0].source
    assert result.outputs[0].target is not None and "LIMIT 1000" in result.outputs[0].target
    assert all(o.quality is None for o in result.outputs)
    assert result.issues == canonical.issues
    assert result.vendor == body
    assert result.usage is None and result.has_artifact is False


async def test_result_from_the_given_status_body_needs_no_request(
    conn: VendorConnection, harness: VendorHarness
) -> None:
    ref = await PROVIDER.submit(conn, {})
    models = [
        {
            "asset_id": "1",
            "asset_name": "orders",
            "translation_status": "valid_translation",
            "source_sql": "SELECT TOP 1 * FROM dbo.orders",
            "target_sql": "SELECT * FROM orders LIMIT 1",
        },
    ]
    await harness.force(ref["job_id"], {"status": "done", "translated_models": models})
    body = await PROVIDER.fetch_status(conn, ref)
    before = await harness.stats()
    result = await PROVIDER.fetch_result(conn, ref, body)
    assert await harness.stats() == before
    assert [o.model_dump() for o in result.outputs] == [
        {
            "name": "orders",
            "source": "SELECT TOP 1 * FROM dbo.orders",
            "target": "SELECT * FROM orders LIMIT 1",
            "status": "valid_translation",
            "quality": None,
        }
    ]
    assert result.issues == []


@pytest.mark.parametrize("given", [None, {}, {"status": "done", "task_id": "x"}, {"translated_models": None}, "junk"])
async def test_result_refetches_when_the_body_has_no_models(
    conn: VendorConnection, harness: VendorHarness, given: Any
) -> None:
    ref = await PROVIDER.submit(conn, {})
    models = [{"asset_id": "1", "asset_name": "orders", "translation_status": "valid_translation"}]
    await harness.force(ref["job_id"], {"status": "done", "translated_models": models})
    result = await PROVIDER.fetch_result(conn, ref, given)
    assert [o.name for o in result.outputs] == ["orders"]
    assert result.vendor["translated_models"] == models
    assert (await harness.stats())["GET /api/v1/dma/v2/projects/{project_id}/translate/jobs/{job_id}"] == 1


async def test_failed_job_error_from_the_simulator(conn: VendorConnection, harness: VendorHarness) -> None:
    harness.sim.step_s = 1.0
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/invalid_x.sql"], "fail_fast": True})
    await harness.clock.advance(3.0)
    canonical = PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref))
    assert canonical.state is State.FAILED
    assert canonical.error is not None and canonical.error.code == "vendor_error"
    assert canonical.error.message.startswith("invalid_x: ")


async def test_cancel_is_unsupported(conn: VendorConnection) -> None:
    with pytest.raises(UnsupportedOperation):
        await PROVIDER.cancel(conn, {"project_id": 7, "job_id": "j"})


async def test_no_artifact(conn: VendorConnection) -> None:
    with pytest.raises(UnsupportedOperation):
        async with PROVIDER.open_artifact(conn, {"project_id": 7, "job_id": "j"}):
            pass


# -- vendor_ref ---------------------------------------------------------------------------------------------


def test_validate_ref() -> None:
    assert PROVIDER.validate_ref({"project_id": 7, "job_id": "abc-1"}) == {"project_id": 7, "job_id": "abc-1"}
    assert PROVIDER.validate_ref({"project_id": "7", "job_id": "abc", "x": 1}) == {"project_id": 7, "job_id": "abc"}


@pytest.mark.parametrize(
    ("ref", "field"),
    [
        # hostile job ids every provider refuses: test_vendor_faults.py
        ({"project_id": 7, "job_id": 12}, "job_id"),
        ({"project_id": 7}, "job_id"),
        ({"project_id": "7/../8", "job_id": "j"}, "project_id"),
        ({"project_id": None, "job_id": "j"}, "project_id"),
        ({"project_id": False, "job_id": "j"}, "project_id"),
        ({"job_id": "j"}, "project_id"),
    ],
)
async def test_hostile_vendor_ids_are_refused_without_a_request(
    conn: VendorConnection, harness: VendorHarness, ref: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as info:
        PROVIDER.validate_ref(ref)
    assert info.value.errors[0]["loc"] == ["vendor_ref", field]
    await refused_before_sending(harness, lambda: PROVIDER.fetch_status(conn, ref))
    await refused_before_sending(harness, lambda: PROVIDER.fetch_result(conn, ref, None))


@pytest.mark.parametrize("ref", [None, [], {}, "job"])
def test_ref_that_is_not_an_object_is_refused(ref: Any) -> None:
    with pytest.raises(InputError):
        PROVIDER.validate_ref(ref)


class HostileIdSimulator(DatafoldSimulator):
    """Creates the job, then answers with a task id that would climb out of the URL path."""

    async def _create(self, request: web.Request) -> web.Response:
        await super()._create(request)
        return web.json_response({"status": "waiting", "task_id": "../../etc", "translated_models": None})


async def test_submit_refuses_a_hostile_task_id_from_the_vendor(vendor: VendorFactory) -> None:
    harness = await vendor("datafold", sim=HostileIdSimulator())
    with pytest.raises(VendorMalformed):
        await PROVIDER.submit(harness.connect(project_id=1), {})


# -- typed vendor errors (the shared ones: test_vendor_faults.py) ------------------------------------------


async def test_job_of_another_project_is_not_found(conn: VendorConnection) -> None:
    ref = await PROVIDER.submit(conn, {"project_id": 7})
    with pytest.raises(VendorNotFound):
        await PROVIDER.fetch_status(conn, {**ref, "project_id": 8})
