"""The Datafold provider's async methods against the live simulator, and every typed error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pydantic import ValidationError

from gateway.errors import (
    InputError,
    UnsupportedOperation,
    VendorAuthError,
    VendorConnectionError,
    VendorMalformed,
    VendorNotFound,
    VendorRateLimited,
    VendorServerError,
    VendorTimeout,
    VendorValidationError,
)
from gateway.states import State
from gateway.testing import conformance
from gateway.vendor_http import VendorConnection
from providers.datafold.client import DatafoldConfig, DatafoldProvider
from providers.datafold.simulator import DatafoldSimulator
from support.cases import load_case

CASE = load_case("datafold")
PREFIX = "/datafold"
KEY_ENV = "DATAFOLD_SIM_KEY_FOR_TESTS"
PROVIDER = DatafoldProvider()


class Sim:
    """The running simulator: its object, its base URL and a plain client for the control API."""

    def __init__(self, sim: DatafoldSimulator, client: Any) -> None:
        self.sim = sim
        self.client = client
        self.base_url = str(client.make_url(PREFIX))

    async def force(self, job_id: str, patch: dict[str, Any]) -> None:
        resp = await self.client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json=patch)
        assert resp.status == 200

    async def fault(self, **spec: Any) -> None:
        resp = await self.client.post(f"{PREFIX}/__sim__/faults", json=spec)
        assert resp.status == 200

    async def stats(self) -> dict[str, int]:
        return (await (await self.client.get(f"{PREFIX}/__sim__/stats")).json())["requests"]


@pytest.fixture
async def live(aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch) -> Sim:
    monkeypatch.setenv(KEY_ENV, "sim-key-datafold")
    sim = PROVIDER.simulator(step_s=0)  # no automatic progression: tests force states
    app = web.Application()
    app.add_subapp(PREFIX, sim.app())
    return Sim(sim, await aiohttp_client(app))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def connect(session: aiohttp.ClientSession, live: Sim, **config: Any) -> VendorConnection:
    settings = {"base_url": live.base_url, "api_key_env": KEY_ENV, **config}
    return PROVIDER.connect(session, DatafoldConfig(**settings))


@pytest.fixture
def conn(session: aiohttp.ClientSession, live: Sim) -> VendorConnection:
    return connect(session, live, project_id=7)


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


async def test_submit_native_input(conn: VendorConnection, live: Sim) -> None:
    ref = await PROVIDER.submit(conn, {"project_id": 31, "asset_paths": ["models/orders.sql"], "concurrency": 3})
    assert set(ref) == {"project_id", "job_id"}
    assert ref["project_id"] == 31
    job = live.sim.jobs[ref["job_id"]]
    assert job.private["project_id"] == 31
    request = job.private["request"]
    assert request.asset_paths == ["models/orders.sql"] and request.concurrency == 3
    assert "project_id" not in request.model_dump()  # project_id goes into the path, not the body


async def test_submit_defaults_to_the_configured_project(conn: VendorConnection, live: Sim) -> None:
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/a.sql"]})
    assert ref["project_id"] == 7
    ref_none = await PROVIDER.submit(conn, {"project_id": None})
    assert ref_none["project_id"] == 7
    assert (await live.stats())["POST /api/v1/dma/v2/projects/{project_id}/translate/jobs"] == 2


async def test_submit_accepts_a_digit_string_project_id(conn: VendorConnection) -> None:
    assert (await PROVIDER.submit(conn, {"project_id": "55"}))["project_id"] == 55


async def test_submit_without_any_project_is_refused_before_sending(session: aiohttp.ClientSession, live: Sim) -> None:
    conn = connect(session, live)  # no project_id configured
    with pytest.raises(InputError) as info:
        await PROVIDER.submit(conn, {"asset_paths": ["models/a.sql"]})
    assert info.value.errors[0]["loc"] == ["input", "project_id"]
    assert await live.stats() == {}


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
    conn: VendorConnection, live: Sim, input_: Any, loc: list[str]
) -> None:
    with pytest.raises(InputError) as info:
        await PROVIDER.submit(conn, input_)
    assert info.value.errors[0]["loc"] == loc
    assert await live.stats() == {}


async def test_submit_vendor_validation_error_carries_the_vendor_detail(conn: VendorConnection) -> None:
    with pytest.raises(VendorValidationError) as info:
        await PROVIDER.submit(conn, {"asset_paths": "models/a.sql", "concurrency": "lots"})
    err = info.value
    assert err.status == 422 and err.problem_code == "validation_error"
    assert [e["loc"] for e in err.errors] == [["input", "asset_paths"], ["input", "concurrency"]]
    assert all(e["msg"] for e in err.errors)


async def test_submit_without_task_id_is_malformed(conn: VendorConnection, live: Sim) -> None:
    await live.fault(fault="malformed_json")
    with pytest.raises(VendorMalformed):
        await PROVIDER.submit(conn, {})


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
async def test_status_and_normalize(conn: VendorConnection, live: Sim, patch: dict[str, Any], state: State) -> None:
    ref = await PROVIDER.submit(conn, {})
    await live.force(ref["job_id"], patch)
    body = await PROVIDER.fetch_status(conn, ref)
    assert body["task_id"] == ref["job_id"]
    assert PROVIDER.normalize(body).state is state


async def test_natural_progression_to_a_result(session: aiohttp.ClientSession, live: Sim) -> None:
    live.sim.step_s = 1.0
    clock = [0.0]
    live.sim.clock = lambda: clock[0]
    conn = connect(session, live, project_id=3)
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/stg_orders.sql", "models/invalid_refunds.sql"]})
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).state is State.QUEUED
    clock[0] = 1.5
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).state is State.RUNNING
    clock[0] = 3.5
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


async def test_result_from_the_given_status_body_needs_no_request(conn: VendorConnection, live: Sim) -> None:
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
    await live.force(ref["job_id"], {"status": "done", "translated_models": models})
    body = await PROVIDER.fetch_status(conn, ref)
    before = await live.stats()
    result = await PROVIDER.fetch_result(conn, ref, body)
    assert await live.stats() == before
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
async def test_result_refetches_when_the_body_has_no_models(conn: VendorConnection, live: Sim, given: Any) -> None:
    ref = await PROVIDER.submit(conn, {})
    models = [{"asset_id": "1", "asset_name": "orders", "translation_status": "valid_translation"}]
    await live.force(ref["job_id"], {"status": "done", "translated_models": models})
    result = await PROVIDER.fetch_result(conn, ref, given)
    assert [o.name for o in result.outputs] == ["orders"]
    assert result.vendor["translated_models"] == models
    assert (await live.stats())["GET /api/v1/dma/v2/projects/{project_id}/translate/jobs/{job_id}"] == 1


async def test_failed_job_error_from_the_simulator(conn: VendorConnection, live: Sim, session: Any) -> None:
    live.sim.step_s = 1.0
    clock = [0.0]
    live.sim.clock = lambda: clock[0]
    ref = await PROVIDER.submit(conn, {"asset_paths": ["models/invalid_x.sql"], "fail_fast": True})
    clock[0] = 3.0
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
        ({"project_id": 7, "job_id": "../../admin"}, "job_id"),
        ({"project_id": 7, "job_id": "a/b"}, "job_id"),
        ({"project_id": 7, "job_id": "a b"}, "job_id"),
        ({"project_id": 7, "job_id": "%2e%2e"}, "job_id"),
        ({"project_id": 7, "job_id": ".."}, "job_id"),
        ({"project_id": 7, "job_id": "x" * 500}, "job_id"),
        ({"project_id": 7, "job_id": ""}, "job_id"),
        ({"project_id": 7, "job_id": 12}, "job_id"),
        ({"project_id": 7}, "job_id"),
        ({"project_id": "7/../8", "job_id": "j"}, "project_id"),
        ({"project_id": None, "job_id": "j"}, "project_id"),
        ({"project_id": False, "job_id": "j"}, "project_id"),
        ({"job_id": "j"}, "project_id"),
    ],
)
async def test_hostile_vendor_ids_are_refused_without_a_request(
    conn: VendorConnection, live: Sim, ref: dict[str, Any], field: str
) -> None:
    with pytest.raises(InputError) as info:
        PROVIDER.validate_ref(ref)
    assert info.value.errors[0]["loc"] == ["vendor_ref", field]
    with pytest.raises(InputError):
        await PROVIDER.fetch_status(conn, ref)
    with pytest.raises(InputError):
        await PROVIDER.fetch_result(conn, ref, None)
    assert await live.stats() == {}


@pytest.mark.parametrize("ref", [None, [], {}, "job"])
def test_ref_that_is_not_an_object_is_refused(ref: Any) -> None:
    with pytest.raises(InputError):
        PROVIDER.validate_ref(ref)


async def test_submit_refuses_a_hostile_task_id_from_the_vendor(conn: VendorConnection, live: Sim) -> None:
    original = live.sim._create

    async def hostile(request: web.Request) -> web.Response:
        await original(request)
        return web.json_response({"status": "waiting", "task_id": "../../etc", "translated_models": None})

    live.sim._create = hostile  # type: ignore[method-assign]
    app = web.Application()
    app.add_subapp(PREFIX, live.sim.app())
    client = await _serve(app)
    try:
        async with aiohttp.ClientSession() as session:
            other = PROVIDER.connect(
                session, DatafoldConfig(base_url=str(client.make_url(PREFIX)), api_key_env=KEY_ENV, project_id=1)
            )
            with pytest.raises(VendorMalformed):
                await PROVIDER.submit(other, {})
    finally:
        await client.close()


async def _serve(app: web.Application) -> Any:
    from aiohttp.test_utils import TestClient, TestServer

    client = TestClient(TestServer(app))
    await client.start_server()
    return client


# -- typed vendor errors ---------------------------------------------------------------------------------------


async def test_missing_key_is_an_auth_error(
    session: aiohttp.ClientSession, live: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    conn = connect(session, live, project_id=7)
    assert "Authorization" not in conn.headers
    with pytest.raises(VendorAuthError) as info:
        await PROVIDER.submit(conn, {})
    assert info.value.status == 401


async def test_invalid_key_is_an_auth_error(
    session: aiohttp.ClientSession, live: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "invalid")
    conn = connect(session, live, project_id=7)
    with pytest.raises(VendorAuthError):
        await PROVIDER.fetch_status(conn, {"project_id": 7, "job_id": "j"})


async def test_the_key_never_shows_in_errors(conn: VendorConnection, live: Sim) -> None:
    await live.fault(fault="http_500")
    with pytest.raises(VendorServerError) as info:
        await PROVIDER.submit(conn, {})
    assert "sim-key-datafold" not in str(info.value)


async def test_unknown_job_is_not_found(conn: VendorConnection) -> None:
    with pytest.raises(VendorNotFound) as info:
        await PROVIDER.fetch_status(conn, {"project_id": 7, "job_id": "00000000-0000-4000-8000-000000000000"})
    assert info.value.status == 404


async def test_job_of_another_project_is_not_found(conn: VendorConnection) -> None:
    ref = await PROVIDER.submit(conn, {"project_id": 7})
    with pytest.raises(VendorNotFound):
        await PROVIDER.fetch_status(conn, {**ref, "project_id": 8})


async def test_rate_limited_with_retry_after(conn: VendorConnection, live: Sim) -> None:
    await live.fault(fault="http_429", retry_after_s=7)
    with pytest.raises(VendorRateLimited) as info:
        await PROVIDER.submit(conn, {})
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(("kind", "retry_after"), [("http_500", None), ("http_503", 2.0)])
async def test_server_errors(conn: VendorConnection, live: Sim, kind: str, retry_after: float | None) -> None:
    ref = await PROVIDER.submit(conn, {})
    await live.fault(fault=kind, retry_after_s=retry_after)
    with pytest.raises(VendorServerError) as info:
        await PROVIDER.fetch_status(conn, ref)
    assert info.value.retry_after == retry_after


async def test_timeout(session: aiohttp.ClientSession, live: Sim) -> None:
    conn = connect(session, live, project_id=7, timeout_s=0.05)
    await live.fault(fault="delay", delay_s=0.5)
    with pytest.raises(VendorTimeout):
        await PROVIDER.submit(conn, {})


async def test_connection_reset_on_submit(conn: VendorConnection, live: Sim) -> None:
    await live.fault(fault="reset")
    with pytest.raises(VendorConnectionError):
        await PROVIDER.submit(conn, {})


async def test_connection_reset_on_status(conn: VendorConnection, live: Sim) -> None:
    ref = await PROVIDER.submit(conn, {})
    # aiohttp retries an idempotent request once when a kept-alive connection drops: reset both tries
    await live.fault(fault="reset", count=2)
    with pytest.raises(VendorConnectionError):
        await PROVIDER.fetch_status(conn, ref)


async def test_malformed_status_body(conn: VendorConnection, live: Sim) -> None:
    ref = await PROVIDER.submit(conn, {})
    await live.fault(fault="malformed_json")
    with pytest.raises(VendorMalformed):
        await PROVIDER.fetch_status(conn, ref)


async def test_unknown_status_maps_to_unknown(conn: VendorConnection, live: Sim) -> None:
    ref = await PROVIDER.submit(conn, {})
    await live.fault(fault="unknown_status")
    canonical = PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref))
    assert canonical.state is State.UNKNOWN
    assert canonical.vendor_status == "sim_unknown_status"


# -- the conformance case ---------------------------------------------------------------------------------


async def test_conformance_case_patches_give_their_states(conn: VendorConnection, live: Sim) -> None:
    assert CASE.provider == PROVIDER.name
    ref = await PROVIDER.submit(conn, CASE.valid_input)
    assert CASE.sim_job_id(ref) in live.sim.jobs
    seen = set()
    for patch, state in CASE.status_patches:
        await live.force(CASE.sim_job_id(ref), patch)
        body = await PROVIDER.fetch_status(conn, ref)
        assert PROVIDER.normalize(body).state is state, patch
        seen.add(body["status"])
    assert seen == set(PROVIDER.mapping)
    await live.force(CASE.sim_job_id(ref), CASE.finished_patch)
    body = await PROVIDER.fetch_status(conn, ref)
    assert PROVIDER.normalize(body).state.has_result
    assert len((await PROVIDER.fetch_result(conn, ref, body)).outputs) == 2
    with pytest.raises(VendorValidationError):
        await PROVIDER.submit(conn, CASE.invalid_input)
    with pytest.raises(VendorNotFound):
        await PROVIDER.fetch_status(conn, CASE.unknown_ref)


async def test_conformance_kit_scenarios_against_the_live_simulator(
    session: aiohttp.ClientSession, live: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect(session, live)  # no configured project: the case's inputs carry their own
    control = conformance.SimControl(session, live.base_url)
    _, seen, result = await conformance.scenario_lifecycle(PROVIDER, CASE, conn, control)
    assert {s.vendor_status for s in seen} >= set(PROVIDER.mapping)
    assert result.outputs and result.vendor
    await conformance.scenario_not_found(PROVIDER, CASE, conn)
    await conformance.scenario_validation(PROVIDER, CASE, conn)
    await conformance.scenario_faults(PROVIDER, CASE, conn, control)
    conformance.check_mapping_total(PROVIDER)
    monkeypatch.setenv(KEY_ENV, "invalid")
    await conformance.scenario_auth_failure(PROVIDER, CASE, connect(session, live))
