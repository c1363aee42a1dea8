"""The client cannot drift from the server: its table of operations is compared with the server's /openapi.json
(built from the server's own declarations), and it only sends what an operation declares. Safe retries:
a submit retried after 503s creates one job, thanks to its Idempotency-Key."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from gateway.client import AsyncClient, Unavailable
from gateway.client.http import Transport
from gateway.client.operations import NOT_FOR_CLIENTS, OPERATIONS, Op
from gateway.plugins import get_providers
from support.demo import Demo


def url_of(demo: Demo) -> str:
    return str(demo.client.make_url("")).rstrip("/")


async def _document(demo: Demo) -> dict[str, Any]:
    async with AsyncClient(url_of(demo)) as client:
        return await client.openapi()


def _server_operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, set[str]], Any]]:
    found = {}
    for path, methods in doc["paths"].items():
        for method, spec in methods.items():
            params: dict[str, set[str]] = {"query": set(), "header": set(), "path": set()}
            for p in spec.get("parameters", []):
                params[p["in"]].add(p["name"])
            success = next(v for k, v in sorted(spec["responses"].items()) if k.startswith("2"))
            schema = next(iter(success["content"].values()))["schema"]
            found[spec["operationId"]] = (method.upper(), path, params, schema.get("$ref"))
    return found


def _differences(op: Op, server: dict[str, tuple[str, str, dict[str, set[str]], Any]]) -> list[str]:
    if op.id not in server:
        return ["the server has no such operation"]
    method, path, params, ref = server[op.id]
    expected = None if op.model is None else f"#/components/schemas/{op.model.__name__}"
    checks = {
        "method and path": ((op.method, op.path), (method, path)),
        "query parameters": (set(op.query), params["query"]),
        "header parameters": (set(op.headers), params["header"]),
        "path parameters": (set(op.path_params), params["path"]),
        "answer model": (expected, ref),
    }
    return [f"{what}: client {mine!r}, server {theirs!r}" for what, (mine, theirs) in checks.items() if mine != theirs]


async def test_the_client_knows_every_operation_of_the_server_exactly(demo) -> None:
    server = _server_operations(await _document(demo))
    assert set(server) - NOT_FOR_CLIENTS == set(OPERATIONS), "client and server list different operations"
    for op in OPERATIONS.values():
        assert _differences(op, server) == [], op.id


async def test_the_client_parses_answers_with_the_schemas_the_server_documents(demo) -> None:
    """Each answer model's JSON schema is the server's component of the same name (no private copy)."""
    schemas = (await _document(demo))["components"]["schemas"]
    for op in OPERATIONS.values():
        if op.model is not None:
            mine = op.model.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
            mine.pop("$defs", None)
            assert mine == schemas[op.model.__name__], op.id


async def test_a_drifted_table_is_caught(demo) -> None:
    """The comparison above fails for an operation the server declares otherwise; and the client refuses to
    send a parameter its table does not declare."""
    server = _server_operations(await _document(demo))
    drifted = Op("list_jobs", "GET", "/v1/jobs", query=("state", "page"), model=OPERATIONS["list_jobs"].model)
    differences = _differences(drifted, server)
    assert len(differences) == 1 and differences[0].startswith("query parameters: client")
    transport = Transport("http://127.0.0.1:9", None)
    with pytest.raises(ValueError, match="declares no query parameter"):
        transport._url(OPERATIONS["list_jobs"], None, {"page": 2})
    with pytest.raises(ValueError, match="declares no header"):
        transport._headers(OPERATIONS["get_job"], {"Idempotency-Key": "x"})


async def test_submit_is_retried_on_503_and_creates_one_job(demo) -> None:
    """The vendor rate-limits the first two submits (the gateway answers 503 with Retry-After); the client
    retries with the same Idempotency-Key and the third try creates the job, once."""
    prefix = get_providers()["camb"].sim_prefix
    await demo.sim(prefix, "/__sim__/faults", {"fault": "http_429", "count": 2, "retry_after_s": 0})
    seen: list[int] = []

    async def count(session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams) -> None:
        if params.method == "POST":
            seen.append(params.response.status)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(count)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = AsyncClient(url_of(demo), "demo-key", session=session)
        # a native CAMB body: the faults hit the vendor's create call, not its language tables
        job = await client.submit({"source_language": 1, "target_language": 31, "texts": ["Retry"]}, provider="camb")
        listed = await client.list_jobs()
    assert seen == [503, 503, 201]
    assert [j.id for j in listed.data] == [job.id]


async def test_retries_stop_and_the_problem_is_raised(demo) -> None:
    prefix = get_providers()["camb"].sim_prefix
    await demo.sim(prefix, "/__sim__/faults", {"fault": "http_429", "count": 10, "retry_after_s": 0})
    async with AsyncClient(url_of(demo), "demo-key", retries=1) as client:
        with pytest.raises(Unavailable) as caught:
            await client.submit({"source_language": 1, "target_language": 31, "texts": ["No"]}, provider="camb")
        assert caught.value.code == "upstream_rate_limited" and caught.value.retry_after is not None
        assert (await client.list_jobs()).data == []
