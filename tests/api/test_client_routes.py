"""The Python client (gateway.client) against the demo gateway (the real app, live simulators): every operation
it knows, typed answers, typed errors carrying the problem body, cursor iteration, artifact streaming, and
source texts paired with every text output."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.client import (
    AsyncClient,
    Client,
    IdempotencyMismatch,
    NoArtifact,
    NotFound,
    NotReady,
    Unauthorized,
    Unsupported,
    ValidationFailed,
)
from gateway.client.operations import OPERATIONS
from gateway.models import Job
from gateway.plugins import get_providers
from gateway.server.run import DEMO_OPERATOR_KEY
from support.cases import load_case
from support.demo import Demo
from support.ports import refused_port
from support.waiting import wait_until

PDF = b"%PDF-1.4\n" + b"client artifact " * 4000


def url_of(demo: Demo) -> str:
    return str(demo.client.make_url("")).rstrip("/")


def prefix(name: str) -> str:
    return get_providers()[name].sim_prefix


async def finish(demo: Demo, job: Job, patch: dict[str, Any] | None = None) -> None:
    case = load_case(job.provider)
    await demo.sim(
        prefix(job.provider), f"/__sim__/jobs/{case.sim_job_id(job.vendor_ref)}/state", patch or case.finished_patch
    )


@pytest.fixture
async def gw(demo):
    async with AsyncClient(url_of(demo), "demo-key") as client:
        yield client


@pytest.fixture
async def operator(demo):
    async with AsyncClient(url_of(demo), DEMO_OPERATOR_KEY) as client:
        yield client


async def _submit_and_finish(demo: Demo, gw: AsyncClient) -> Job:
    job = await gw.submit_text(["Hello", "World"], provider="camb", source_language="en-us", target_language="de-de")
    await finish(demo, job)
    return await gw.wait(job.id, timeout=20)


# One exercise per operation of the client's table; an operation without one fails the parametrization.
async def ex_list_providers(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    providers = {p.name: p for p in await gw.providers()}
    assert providers["camb"].mapping["SUCCESS"] == "succeeded"
    assert "document" in providers["doc_translator"].capabilities["input_kinds"]


async def ex_submit(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await gw.submit_text(["Hello"], provider="camb", source_language="en-us", target_language="de-de")
    assert isinstance(job, Job) and job.state == "queued" and job.version == 1
    job_input = {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["Once"]}
    again = await gw.submit(job_input, provider="camb", idempotency_key="k-1")
    same = await gw.submit(job_input, provider="camb", idempotency_key="k-1")
    assert same.id == again.id
    with pytest.raises(IdempotencyMismatch) as caught:
        await gw.submit({**job_input, "texts": ["Other"]}, provider="camb", idempotency_key="k-1")
    assert caught.value.status == 409 and caught.value.problem["code"] == "idempotency_mismatch"
    with pytest.raises(ValidationFailed) as invalid:
        await gw.submit({"kind": "text"}, provider="no_such_provider")
    assert invalid.value.errors and invalid.value.errors[0]["loc"][0] == "body"


async def ex_attach(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    async with demo.session.post(
        demo.sim_url + prefix("segment_qa") + "/v1/jobs",
        json={"mode": "translation", "source_lang": "de", "target_lang": "en", "texts": ["Guten Tag, Client."]},
        headers={"X-API-Key": "direct-key"},
    ) as resp:
        vendor_job = (await resp.json())["job_id"]
    job = await gw.attach("segment_qa", {"job_id": vendor_job}, metadata={"via": "client"})
    assert job.provider == "segment_qa" and job.vendor_ref == {"job_id": vendor_job} and job.metadata["via"] == "client"


async def ex_list_jobs(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    made = [
        (await gw.submit_text([f"Text {i}"], provider="camb", source_language="en-us", target_language="de-de")).id
        for i in range(5)
    ]
    page = await gw.list_jobs(limit=2)
    assert [j.id for j in page.data] == made[::-1][:2] and page.next_cursor
    seen = [job.id async for job in gw.iter_jobs(page_size=2, provider="camb")]
    assert seen == made[::-1]  # every page followed, newest first, no job twice
    assert [j.id async for j in gw.iter_jobs(state="succeeded")] == []


async def ex_get_job(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await gw.submit_text(["Hi"], provider="camb", source_language="en-us", target_language="de-de")
    assert (await gw.get(job.id)).id == job.id
    moved = await gw.get(job.id, wait=10, version=1)  # long poll: answers at the next version
    assert moved.version > 1
    with pytest.raises(NotFound) as missing:
        await gw.get("job_000000000000000000000000")
    assert missing.value.code == "not_found" and missing.value.problem["status"] == 404


async def ex_cancel(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await gw.submit_text(["Stop"], provider="camb", source_language="en-us", target_language="de-de")
    with pytest.raises(Unsupported) as caught:
        await gw.cancel(job.id)
    assert caught.value.code == "unsupported" and "cannot cancel" in caught.value.detail


async def ex_transitions(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await _submit_and_finish(demo, gw)
    history = await gw.transitions(job.id)
    assert [t.version for t in history] == list(range(1, job.version + 1))
    assert history[0].state == "queued" and history[-1].state == "succeeded"


async def ex_events(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await _submit_and_finish(demo, gw)
    replay = [j.version async for j in gw.events(job.id, last_event_id=0)]
    assert replay == list(range(1, job.version + 1))


async def ex_result(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    running = await gw.submit_text(["Not yet"], provider="camb", source_language="en-us", target_language="de-de")
    with pytest.raises(NotReady) as early:
        await gw.result(running.id)
    assert early.value.job is not None and early.value.job.id == running.id
    job = await _submit_and_finish(demo, gw)
    result = await gw.result(job.id)
    # every text output carries the source it translates, though CAMB's result does not repeat it
    assert [(o.source, o.target is not None) for o in result.outputs] == [("Hello", True), ("World", True)]


async def ex_artifact(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await gw.submit(
        {
            "kind": "document",
            "source_language": "en",
            "target_language": "de",
            "filename": "report.pdf",
            "content_base64": base64.b64encode(PDF).decode(),
        },
        provider="doc_translator",
    )
    await finish(demo, job)
    await gw.wait(job.id, timeout=20)
    path = await gw.artifact(job.id, demo.tmp / "out.pdf")
    status, served, _ = await demo.call("GET", f"/v1/jobs/{job.id}/artifact")
    assert status == 200 and path.read_bytes() == served and served.startswith(b"%PDF-")
    into_dir = await gw.artifact(job.id, demo.tmp)
    assert into_dir.parent == demo.tmp and into_dir.suffix == ".pdf" and into_dir.read_bytes() == path.read_bytes()
    text_job = await gw.submit_text(["x"], provider="camb", source_language="en-us", target_language="de-de")
    with pytest.raises(NoArtifact):
        await gw.artifact(text_job.id, demo.tmp / "none.bin")
    assert not (demo.tmp / "none.bin").exists() and not (demo.tmp / "none.bin.part").exists()


async def ex_usage(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await _submit_and_finish(demo, gw)
    report = await gw.usage(group_by="provider")
    (camb,) = report.groups
    assert camb.key == "camb" and camb.jobs["succeeded"] == 1 and camb.durations["camb"].count == 1
    assert job.finished_at is not None
    day = job.finished_at.astimezone(UTC).date()
    since = (day - timedelta(days=1)).isoformat()
    by_day = await gw.usage(since=since, until=datetime.now(UTC) + timedelta(days=1), group_by="day")
    assert [g.key for g in by_day.groups] == [day.isoformat()] and by_day.total.attempts == 1
    assert (await gw.usage(since="2020-01-01", until="2020-01-02")).total.attempts == 0
    with pytest.raises(ValueError):
        await gw.usage(since=datetime(2024, 1, 1))  # a naive datetime is refused before any request
    assert job.id


async def ex_healthz(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    assert (await gw.health()).status == "ok"


async def ex_readyz(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    assert (await gw.ready()).status == "ready"


async def ex_metrics(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    assert "gateway_jobs" in await gw.metrics()


async def ex_openapi(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    assert (await gw.openapi())["openapi"] == "3.1.0"


async def ex_operator_jobs(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    mine = await gw.submit_text(["A"], provider="camb", source_language="en-us", target_language="de-de")
    async with AsyncClient(url_of(demo), "demo-key-b") as other:
        theirs = await other.submit_text(["B"], provider="camb", source_language="en-us", target_language="de-de")
    both = await op.operator_jobs()
    assert {j.id: j.tenant for j in both.data} == {mine.id: "demo", theirs.id: "demo-b"}
    only_b = await op.operator_jobs(tenant="demo-b", provider="camb")
    assert [j.id for j in only_b.data] == [theirs.id]
    with pytest.raises(Unauthorized):
        await gw.operator_jobs()  # a tenant key opens no operator route


async def ex_operator_job(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await _submit_and_finish(demo, gw)
    detail = await op.operator_job(job.id)
    assert detail.job.tenant == "demo" and [t.state for t in detail.transitions][-1] == "succeeded"
    assert detail.result is not None and detail.result.outputs[0].source == "Hello"
    assert detail.deliveries.webhook_url is None and detail.deliveries.data == []


async def ex_operator_events(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    seen: list[tuple[str, str]] = []

    async def listen() -> None:
        async for job in op.operator_events():
            seen.append((job.id, job.state))
            if job.state == "succeeded":
                return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.3)
    job = await _submit_and_finish(demo, gw)
    await asyncio.wait_for(listener, 10)
    assert (job.id, "queued") in seen and seen[-1] == (job.id, "succeeded")


async def ex_operator_providers(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    await _submit_and_finish(demo, gw)
    health = {p.name: p for p in await op.operator_providers()}
    camb = health["camb"]
    assert camb.breaker.state == "closed" and camb.jobs["succeeded"] == 1 and camb.watching == 0
    assert camb.poll_lag_s is not None and camb.poll_lag_s >= 0
    job = await gw.submit_text(["Faulty"], provider="camb", source_language="en-us", target_language="de-de")
    await demo.sim(prefix("camb"), "/__sim__/faults", {"fault": "http_500", "count": 3})

    async def failing() -> Any:
        camb = {p.name: p for p in await op.operator_providers()}["camb"]
        return camb if camb.recent_errors else None

    camb = await wait_until(failing, what="camb's recent errors in the provider health")
    assert camb.recent_errors and camb.recent_errors[0].error.startswith("Vendor") and camb.watching == 1
    assert job.id


async def _hooked(gw: AsyncClient, port: int) -> Job:
    """A job whose webhook URL (a port refusing connections) fails: once its first try is logged."""
    job = await gw.submit_text(
        ["Hook"],
        provider="camb",
        source_language="en-us",
        target_language="de-de",
        webhook_url=f"http://127.0.0.1:{port}/hook",
    )
    await wait_until(lambda: _tried(gw, job.id), what="a logged try")
    return job


async def _tried(gw: AsyncClient, job_id: str) -> bool:
    return any(e.attempts for e in (await gw.deliveries(job_id)).data)


async def ex_job_deliveries(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    with refused_port() as port:
        job = await _hooked(gw, port)
        log = await gw.deliveries(job.id)
    assert log.webhook_url and log.endpoint is not None and not log.endpoint.disabled
    first = log.data[0]
    assert first.id == f"evt_{job.id}_1" and first.state == "pending" and first.attempts[0].error == "connection"
    with pytest.raises(NotFound):
        await gw.deliveries("job_" + "0" * 24)


async def ex_retry_delivery(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    with refused_port() as port:
        job = await _hooked(gw, port)
        again = await gw.retry_delivery(f"evt_{job.id}_1")
    assert again.id == f"evt_{job.id}_1" and again.state == "pending" and again.attempts


async def ex_replay_deliveries(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    with refused_port() as port:
        job = await _hooked(gw, port)
        replayed = await gw.replay_deliveries(job.id, from_version=1)
        assert replayed[0].version == 1 and replayed[0].state == "pending"
        with pytest.raises(ValidationFailed):
            await gw.replay_deliveries(job.id, from_version=99)


async def ex_tenant_events(demo: Demo, gw: AsyncClient, op: AsyncClient) -> None:
    job = await _submit_and_finish(demo, gw)
    seen: list[tuple[int, int]] = []
    async for event_id, event_job in gw.tenant_events(last_event_id=0, provider="camb"):
        if event_job.id == job.id:
            seen.append((event_id, event_job.version))
        if event_job.id == job.id and event_job.terminal:
            break
    assert [version for _, version in seen] == list(range(1, job.version + 1))
    assert [event_id for event_id, _ in seen] == sorted({event_id for event_id, _ in seen})


EXERCISES: dict[str, Callable[[Demo, AsyncClient, AsyncClient], Awaitable[None]]] = {
    name.removeprefix("ex_"): fn for name, fn in globals().items() if name.startswith("ex_")
}


@pytest.mark.parametrize("name", ["camb", "segment_qa"])
async def test_every_text_output_carries_its_source(demo, gw, name):
    texts = ["Die Qualität spricht für sich.", "Wir liefern pünktlich."]
    job = await gw.submit_text(texts, provider=name, source_language="de-de", target_language="en-us")
    await finish(demo, job)
    await gw.wait(job.id, timeout=20)
    result = await gw.result(job.id)
    assert [o.source for o in result.outputs] == texts
    assert all(o.target for o in result.outputs)


@pytest.mark.parametrize("op_id", sorted(OPERATIONS))
async def test_every_operation_against_the_demo_server(demo, gw, operator, tmp_path, op_id):
    demo.tmp = tmp_path
    await EXERCISES[op_id](demo, gw, operator)


def test_every_exercise_names_an_operation():
    assert set(EXERCISES) == set(OPERATIONS)


async def test_a_wrong_key_is_a_typed_error_with_the_problem_body(demo):
    async with AsyncClient(url_of(demo), "not-a-key") as client:
        with pytest.raises(Unauthorized) as caught:
            await client.list_jobs()
    assert caught.value.status == 401 and caught.value.problem["title"] and "Bearer" in caught.value.detail


async def test_the_sync_client_wraps_the_same_calls(demo):
    url = url_of(demo)

    def use() -> tuple[str, list[str | None], int]:
        with Client(url, "demo-key") as gw:
            job = gw.submit_text(["Hallo", "Welt"], provider="camb", source_language="de-de", target_language="en-us")
            return job.id, [], len(list(gw.iter_jobs(page_size=1)))

    job_id, _, count = await asyncio.to_thread(use)
    assert count == 1
    await finish(demo, Job.model_validate((await demo.call("GET", f"/v1/jobs/{job_id}"))[1]))

    def finish_sync() -> list[str | None]:
        with Client(url, "demo-key") as gw:
            versions: list[int] = []
            done = gw.wait(job_id, timeout=20, on_update=lambda j: versions.append(j.version))
            assert done.state == "succeeded" and versions == sorted(set(versions))
            return [o.source for o in gw.result(job_id).outputs]

    assert await asyncio.to_thread(finish_sync) == ["Hallo", "Welt"]
