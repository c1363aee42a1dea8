"""Hostile request bodies (issue classes 1-3): nesting, size and text that cannot be kept are refused at the
boundary with a 422 naming the place, before any vendor is called; what is accepted can be stored, read,
listed and finished; and a stored job that cannot be rendered in full still reads and lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.server.keys import STORE
from gateway.states import CanonicalStatus, State
from gateway.store.records import JobRecord
from support.cases import load_case

JSON = {"Content-Type": "application/json"}
CAMB_INPUT = json.dumps(load_case("camb").valid_input)


def raw(**fields: str) -> str:
    """A JSON object written by hand: each field's value is already JSON text (which may be hostile)."""
    return "{" + ",".join(f'"{name}":{value}' for name, value in fields.items()) + "}"


def nested(levels: int, leaf: str = "1") -> str:
    """`{"a":{"a":...leaf}}` with `levels` objects."""
    return '{"a":' * levels + leaf + "}" * levels


async def refused(demo, path: str, body: bytes | str, loc: list[Any], *, status: int = 422) -> dict[str, Any]:
    """POST `body`; assert the problem, its first error's place, that no vendor heard of it and that the
    tenant's listing still answers."""
    before = await demo.vendor_requests()
    data = body.encode() if isinstance(body, str) else body
    got, body, headers = await demo.call("POST", path, data=data, headers=JSON)
    assert got == status, body
    assert headers["Content-Type"].startswith("application/problem+json")
    if status == 422:
        assert body["code"] == "validation_error" and body["errors"], body
        assert body["errors"][0]["loc"][: len(loc)] == loc, body["errors"]
        json.dumps(body["errors"]).encode("utf-8")  # the answer itself is valid UTF-8 JSON
    assert await demo.vendor_requests() == before, "a vendor was called for a refused request"
    await demo.listing()
    return body


# -- class 1: deep or large values in fields the gateway keeps -------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "loc"),
    [
        (nested(9), ["body", "metadata"]),  # one level beyond the default 8
        (nested(400), ["body", "metadata"]),  # the example (beyond the body's depth too)
        (nested(900), ["body", "metadata"]),
        (nested(20_000), ["body"]),  # beyond what the JSON parser itself can nest
        (json.dumps({f"k{i}": i for i in range(101)}), ["body", "metadata"]),  # keys at all levels
        (json.dumps({"a": [{"b": i} for i in range(101)]}), ["body", "metadata"]),
        (json.dumps({"big": "x" * (16 * 1024)}), ["body", "metadata"]),  # compact JSON beyond 16 KiB
        (json.dumps([1, 2]), ["body", "metadata"]),
    ],
    ids=["depth9", "depth400", "depth900", "depth20000", "keys101", "nested_keys101", "bytes", "not_an_object"],
)
async def test_metadata_beyond_its_bounds_is_refused_before_any_vendor_call(demo, metadata, loc):
    await refused(demo, "/v1/jobs", raw(provider='"camb"', input=CAMB_INPUT, metadata=metadata), loc)
    assert await demo.listing() == []


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/attach"])
async def test_metadata_on_attach_is_bounded_the_same_way(demo, path):
    target = {"input": CAMB_INPUT} if path == "/v1/jobs" else {"vendor_ref": '{"task_id":"x"}'}
    await refused(demo, path, raw(provider='"camb"', **target, metadata=nested(9)), ["body", "metadata"])


async def test_metadata_at_its_bounds_is_kept_shown_and_the_job_ends(demo):
    deep = json.loads(nested(8, '"leaf"'))
    wide = {f"k{i}": {"v": i} for i in range(50)}  # 100 keys at all levels
    for metadata in (deep, wide, {"text": "é" * 4000, "n": 10**30, "emoji": "\U0001f600"}):
        job = await demo.submit("camb", load_case("camb").valid_input, metadata=metadata)
        assert job["metadata"] == metadata
        listed = {j["id"]: j for j in await demo.listing()}
        assert listed[job["id"]]["metadata"] == metadata
        done = await demo.finish(job)
        assert done["state"] == "succeeded" and done["metadata"] == metadata


async def test_the_metadata_bounds_are_configured_and_documented(new_demo):
    server = {"max_metadata_depth": 2, "max_metadata_keys": 3, "max_metadata_bytes": 100, "max_json_depth": 6}
    d = await new_demo(server=server)
    for metadata in ('{"a":{"b":{"c":1}}}', '{"a":1,"b":2,"c":3,"d":4}', json.dumps({"a": "x" * 100})):
        body = raw(provider='"camb"', input=CAMB_INPUT, metadata=metadata)
        await refused(d, "/v1/jobs", body, ["body", "metadata"])
    deep_input = raw(provider='"camb"', input=raw(x=nested(5)))
    await refused(d, "/v1/jobs", deep_input, ["body", "input", "x", "a", "a", "a", "a"])
    job = await d.submit("camb", load_case("camb").valid_input, metadata={"a": {"b": 1}, "c": 2})
    assert job["metadata"] == {"a": {"b": 1}, "c": 2}
    _, doc, _ = await d.call("GET", "/openapi.json", key=None)
    metadata_schema = doc["components"]["schemas"]["SubmitRequest"]["properties"]["metadata"]
    assert metadata_schema["maxProperties"] == 3
    assert "nested at most 2 levels" in metadata_schema["description"]
    assert "100 bytes" in metadata_schema["description"]
    assert "nested at most 6 levels" in doc["paths"]["/v1/jobs"]["post"]["requestBody"]["description"]


async def test_a_stored_job_that_cannot_be_rendered_still_reads_lists_and_streams(demo):
    """A job stored before the bounds existed (or by another writer) with values no answer can carry."""
    now = datetime.now(UTC)
    deep: Any = 1
    for _ in range(400):
        deep = {"a": deep}
    record = JobRecord(
        id="job_" + "ab" * 12,
        tenant="demo",
        provider="camb",
        vendor_ref={"task_id": "legacy"},
        status=CanonicalStatus(state=State.SUCCEEDED),
        created_at=now,
        updated_at=now,
        metadata={"deep": deep, "fine": "kept"},
    )
    await demo.app[STORE].create_job(record)
    page = await demo.listing()
    [shown] = [j for j in page if j["id"] == record.id]
    assert shown["metadata"]["fine"] == "kept" and shown["state"] == "succeeded"
    assert {"code": "unrenderable", "target": "metadata"}.items() <= shown["issues"][0].items()
    status, one, _ = await demo.call("GET", f"/v1/jobs/{record.id}")
    assert status == 200 and one["metadata"] == shown["metadata"]
    status, stream, _ = await demo.call("GET", f"/v1/jobs/{record.id}/events")
    assert status == 200 and b"event: job" in stream and b'"unrenderable"' in stream


# -- class 2: bodies the JSON parser cannot handle -----------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/jobs/attach"])
@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b"[" * 100_000, ["body"]),
        (b'{"a":' * 3_000, ["body"]),
        (b'{"a":' * 3_000 + b"1" + b"}" * 3_000, ["body"]),  # well-formed, far too deep
        (raw(provider='"camb"', input=raw(texts="[" * 40 + "]" * 40)), ["body", "input", "texts"]),
        (b'{"provider":"camb","input":{"n":NaN}}', ["body", "input", "n"]),
        (b'{"provider":"camb","input":{"n":-Infinity}}', ["body", "input", "n"]),
        (b'{"provider":"camb","input":{"n":1e999}}', ["body", "input", "n"]),
        (b'{"provider":"camb","input":{"n":' + b"9" * 5000 + b"}}", ["body"]),
        (b'{"provider":"camb","input":{"t":"\xed\xa0\x80"}}', ["body"]),  # a surrogate encoded as bytes: not UTF-8
        ('{"provider":"camb","input":{}}'.encode("utf-16"), ["body"]),
    ],
    ids=[
        "brackets",
        "open_objects",
        "deep_objects",
        "deep_array",
        "nan",
        "infinity",
        "overflow",
        "huge_int",
        "utf8_surrogate",
        "utf16",
    ],
)
async def test_bodies_the_parser_cannot_handle_are_422_on_every_body(demo, path, body, loc):
    await refused(demo, path, body, loc)


async def test_a_body_over_the_size_limit_is_413_before_it_is_read(demo):
    await refused(demo, "/v1/jobs", b"[" * (11 * 1024 * 1024), [], status=413)


# -- class 3: text that cannot be encoded as UTF-8 ------------------------------------------------------------

LONE = "\\ud800"  # a JSON escape of a lone surrogate, as a hostile client sends it
TEXTS = '{"kind":"text","source_language":"de","target_language":"en","texts":["a%sb"]}'
DOCUMENT = (
    '{"kind":"document","source_language":"en","target_language":"de","filename":"%s.pdf","content_base64":"JVBERi0="}'
)


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/jobs", raw(provider='"camb"', input='{"source_language":1,"target_language":31,"texts":["ok","%s"]}'),
         ["body", "input", "texts", 1]),
        ("/v1/jobs", raw(provider='"segment_qa"', input=TEXTS), ["body", "input", "texts", 0]),
        ("/v1/jobs", raw(provider='"datafold"', input='{"project_id":1,"asset_paths":["models/%s.sql"]}'),
         ["body", "input", "asset_paths", 0]),
        ("/v1/jobs", raw(provider='"doc_translator"', input=DOCUMENT), ["body", "input", "filename"]),
        ("/v1/jobs", raw(provider='"camb"', input=CAMB_INPUT, metadata='{"k":"%s"}'), ["body", "metadata", "k"]),
        ("/v1/jobs", raw(provider='"camb"', input=CAMB_INPUT, metadata='{"%s":1}'), ["body", "metadata", "\\ud800"]),
        ("/v1/jobs", raw(provider='"camb"', input=CAMB_INPUT, metadata='{"a":[{"b":"\\udfff%s"}]}'),
         ["body", "metadata", "a", 0, "b"]),
        ("/v1/jobs", raw(provider='"c%samb"', input="{}"), ["body", "provider"]),
        ("/v1/jobs", raw(route='"text"', input=TEXTS), ["body", "input", "texts", 0]),
        ("/v1/jobs/attach", raw(provider='"camb"', vendor_ref='{"task_id":"%s"}'), ["body", "vendor_ref", "task_id"]),
        ("/v1/jobs/attach", raw(provider='"camb"', vendor_ref='{"task_id":"x"}', metadata='{"%s":"v"}'),
         ["body", "metadata"]),
    ],
    ids=["camb_texts", "segment_qa_texts", "datafold_asset_paths", "document_filename", "metadata_value",
         "metadata_key", "metadata_nested", "provider", "route_texts", "attach_ref", "attach_metadata_key"],
)  # fmt: skip
async def test_lone_surrogates_are_refused_where_they_stand(demo, path, body, loc):
    await refused(demo, path, body.replace("%s", LONE), loc)
    assert await demo.listing() == []


async def test_surrogate_pairs_are_text_and_the_job_ends_with_its_result(demo):
    """`\\ud83d\\ude00` is one character (😀), not a lone surrogate: accepted, kept, finished."""
    body = raw(
        provider='"camb"',
        input='{"source_language":1,"target_language":31,"texts":["hi \\ud83d\\ude00"]}',
        metadata='{"mood":"\\ud83d\\ude00"}',
    )
    status, job, _ = await demo.call("POST", "/v1/jobs", data=body.encode(), headers=JSON)
    assert status == 201, job
    assert job["metadata"] == {"mood": "\U0001f600"}
    done = await demo.finish(job)
    assert done["state"] == "succeeded"
    status, result, _ = await demo.call("GET", f"/v1/jobs/{job['id']}/result")
    assert status == 200 and result["outputs"]
