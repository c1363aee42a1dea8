"""segment_qa: the provider's async methods against the live simulator (and a scripted vendor for odd answers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import (
    InputError,
    UnsupportedOperation,
    VendorConflict,
    VendorMalformed,
    VendorValidationError,
)
from gateway.models import Cost, Output, Unit, UnitCount, Usage
from gateway.states import State
from gateway.testing.harness import VendorFactory, VendorHarness
from gateway.vendor_http import VendorConnection
from providers.segment_qa.client import SegmentQAProvider
from providers.segment_qa.mapping import NEEDS_REVIEW_MESSAGE
from support.cases import load_case
from support.cases.segment_qa import DOC_RESULT_EXAMPLE
from support.refusals import refused_before_sending
from support.scripted import Answer, ScriptedVendor

PREFIX = "/segment-qa"
PROVIDER = SegmentQAProvider()


CASE = load_case("segment_qa")


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("segment_qa", step_s=1.0)


async def finish(harness: VendorHarness, ref: dict[str, Any], steps: int = 12) -> Any:
    """Let the job run `steps` simulator steps; its status body then."""
    await harness.clock.advance(steps * harness.sim.step_s)
    return await PROVIDER.fetch_status(harness.conn, ref)


def text_input(*texts: str) -> dict[str, Any]:
    return {"kind": "text", "source_language": "de", "target_language": "en", "texts": list(texts)}


# -- the provider's description ----------------------------------------------------------------------------------
def test_provider_identity_and_capabilities() -> None:
    assert (PROVIDER.name, PROVIDER.display_name, PROVIDER.sim_prefix) == (
        "segment_qa",
        "Segment-QA translation pipeline",
        "/segment-qa",
    )
    assert PROVIDER.capabilities.model_dump() == {
        "submit": True,
        "status": True,
        "result": True,
        "cancel": False,
        "artifact": False,
        "progress": True,
        "input_kinds": ["native", "text"],
    }
    assert PROVIDER.auth_headers("sim-key-segment_qa") == {"X-API-Key": "sim-key-segment_qa"}
    assert PROVIDER.auth_headers(None) == {}


async def test_cancel_and_artifact_are_unsupported(harness: VendorHarness) -> None:
    with pytest.raises(UnsupportedOperation):
        await PROVIDER.cancel(harness.conn, {"job_id": "x"})
    with pytest.raises(UnsupportedOperation):
        async with PROVIDER.open_artifact(harness.conn, {"job_id": "x"}):
            pass


# -- submit ---------------------------------------------------------------------------------------------------
async def test_submit_canonical_text_input(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("Hallo Welt.", "Wie geht's?"))
    assert set(ref) == {"job_id"} and ref["job_id"] in harness.sim.jobs
    assert harness.sim.jobs[ref["job_id"]].private["body"] == {
        "mode": "translation",
        "source_lang": "de",
        "target_lang": "en",
        "texts": ["Hallo Welt.", "Wie geht's?"],
    }


async def test_submit_native_input_passes_through(harness: VendorHarness) -> None:
    native = {
        "source_lang": "de",
        "target_lang": "fr",
        "text": "Erster Satz. Zweiter Satz.",
        "glossary": {"Qualität": "qualité"},
        "instructions": "formal",
        "source_review": True,
    }
    ref = await PROVIDER.submit(harness.conn, native)
    job = harness.sim.jobs[ref["job_id"]]
    assert job.private["body"] == {"mode": "translation", **native}  # mode defaults to translation
    assert job.private["texts"] == ["Erster Satz.", "Zweiter Satz."]


async def test_submitting_duplicate_content_adopts_the_existing_job(harness: VendorHarness) -> None:
    first = await PROVIDER.submit(harness.conn, text_input("Doppelt."))
    await harness.clock.advance(2.0)
    second = await PROVIDER.submit(harness.conn, text_input("Doppelt."))
    assert second == first
    assert harness.sim.stats["POST /v1/jobs"] == 2 and len(harness.sim.jobs) == 1


@pytest.mark.parametrize(
    ("input", "loc"),
    [
        ("text", ["input"]),
        (["a"], ["input"]),
        ({"kind": "document", "source_language": "de", "target_language": "en"}, ["input", "kind"]),
        ({"kind": "text", "target_language": "en", "texts": ["a"]}, ["input", "source_language"]),
        ({"kind": "text", "source_language": "de", "target_language": 3, "texts": ["a"]}, ["input", "target_language"]),
        ({"kind": "text", "source_language": "de", "target_language": "en"}, ["input", "texts"]),
        ({"kind": "text", "source_language": "de", "target_language": "en", "texts": []}, ["input", "texts"]),
        ({"kind": "text", "source_language": "de", "target_language": "en", "texts": "a"}, ["input", "texts"]),
        ({"kind": "text", "source_language": "de", "target_language": "en", "texts": ["a", 2]}, ["input", "texts", 1]),
        ({"kind": "text", "source_language": "de", "target_language": "en", "texts": [" "]}, ["input", "texts", 0]),
        ({"target_lang": "en", "texts": ["a"]}, ["input", "source_lang"]),
        ({"source_lang": "de", "texts": ["a"]}, ["input", "target_lang"]),
        ({"source_lang": "de", "target_lang": "en"}, ["input", "texts"]),
    ],
)
async def test_submit_refuses_input_that_cannot_work_before_any_request(
    harness: VendorHarness, input: Any, loc: list[Any]
) -> None:
    await refused_before_sending(harness, lambda: PROVIDER.submit(harness.conn, input), loc)


async def test_vendor_validation_error_carries_the_vendor_detail(harness: VendorHarness) -> None:
    with pytest.raises(VendorValidationError) as info:
        await PROVIDER.submit(
            harness.conn, {"mode": "summarize", "source_lang": "de", "target_lang": "en", "text": "x"}
        )
    assert info.value.status == 422
    assert info.value.errors == [{"loc": ["input"], "msg": "mode must be 'translation'"}]


# -- status ----------------------------------------------------------------------------------------------------
async def test_status_progresses_and_normalizes(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("Eins.", "Zwei."))
    first = PROVIDER.normalize(await PROVIDER.fetch_status(harness.conn, ref))
    assert (first.state, first.vendor_status, first.progress) == (State.QUEUED, "queued", None)
    await harness.clock.advance(1.0)
    second = PROVIDER.normalize(await PROVIDER.fetch_status(harness.conn, ref))
    assert (second.state, second.stage, second.progress) == (State.RUNNING, "supervisor", 0)
    await harness.clock.advance(3.0)
    third = PROVIDER.normalize(await PROVIDER.fetch_status(harness.conn, ref))
    assert (third.state, third.stage, third.progress) == (State.RUNNING, "qa", 100)
    final = PROVIDER.normalize(await finish(harness, ref))
    assert (final.state, final.vendor_status, final.progress, final.terminal) == (
        State.SUCCEEDED,
        "completed",
        100,
        True,
    )


async def test_status_of_a_retrying_job_is_queued_with_a_retryable_error(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("RETRY mich."))
    await harness.clock.advance(3.0)
    status = PROVIDER.normalize(await PROVIDER.fetch_status(harness.conn, ref))
    assert status.state is State.QUEUED and status.vendor_status == "failed"
    assert status.error is not None and status.error.retryable and "timed out" in status.error.message


# -- result ----------------------------------------------------------------------------------------------------
async def test_result_of_a_completed_job(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("Hallo Welt.", "Gute Reise."))
    status_body = await finish(harness, ref)
    parts = await PROVIDER.fetch_result(harness.conn, ref, status_body)
    scores = [s["qa_score"] for s in status_body["segments"]]
    assert parts.outputs == [
        Output(name="0", source="Hallo Welt.", target="[en] Hallo Welt.", status="done", quality=scores[0]),
        Output(name="1", source="Gute Reise.", target="[en] Gute Reise.", status="done", quality=scores[1]),
    ]
    usage = status_body["token_usage"]
    assert parts.usage == Usage(
        input_tokens=usage["input_tokens"],
        output_tokens=usage["output_tokens"],
        cost=Cost(amount=status_body["cost_eur"], currency="EUR"),
        units=[UnitCount(unit=Unit.WORDS, quantity=4), UnitCount(unit=Unit.SEGMENTS, quantity=2)],  # 2 + 2 words
    )
    assert parts.issues == [] and not parts.has_artifact
    assert parts.vendor["job_id"] == ref["job_id"] and parts.vendor["status"] == "completed"


async def test_result_of_a_job_with_blocks(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("Ein BLOCK.", "Gut."))
    status_body = await finish(harness, ref)
    assert PROVIDER.normalize(status_body).state is State.COMPLETED_WITH_ISSUES
    parts = await PROVIDER.fetch_result(harness.conn, ref, status_body)
    assert [(o.name, o.status, o.target) for o in parts.outputs] == [("0", "blocked", None), ("1", "done", "[en] Gut.")]
    assert [i.model_dump() for i in parts.issues] == [
        {"code": "blocked", "message": "Markup conflict: unbalanced placeholder tags", "target": "0", "hint": None}
    ]


async def test_result_of_a_job_that_needs_review_uses_the_results_warning(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("LOWQ Satz.", "Gut."))
    await finish(harness, ref)
    await harness.force(ref["job_id"], {"warning": "Average QA 76.2 below 85"})
    stale_status = {"status": "needs_review", "warning": "an older warning"}
    parts = await PROVIDER.fetch_result(harness.conn, ref, stale_status)
    assert [(i.code, i.message, i.target) for i in parts.issues] == [
        ("needs_review", "Average QA 76.2 below 85", None),
        ("low_confidence", "QA score 68.0 is below the minimum of 85.0", "0"),
    ]
    assert parts.issues[1].hint == "Have a reviewer check this segment"


async def test_result_before_completion_is_a_vendor_conflict(harness: VendorHarness) -> None:
    ref = await PROVIDER.submit(harness.conn, text_input("Noch nicht."))
    with pytest.raises(VendorConflict) as info:
        await PROVIDER.fetch_result(harness.conn, ref, {"status": "queued"})
    assert info.value.status == 409 and info.value.body["status"] == "queued"


# -- vendor ids (the typed vendor errors every provider shares: test_vendor_faults.py) -----------------------------
#: refs that are no {"job_id": str} at all (hostile job ids every provider refuses: test_vendor_faults.py)
NOT_REFS = [{"job_id": 5}, {"id": "abc"}, {}, "abc", None]


@pytest.mark.parametrize("ref", NOT_REFS)
async def test_refs_without_a_job_id_are_refused_without_a_request(harness: VendorHarness, ref: Any) -> None:
    with pytest.raises(InputError):
        PROVIDER.validate_ref(ref)
    await refused_before_sending(harness, lambda: PROVIDER.fetch_status(harness.conn, ref))
    await refused_before_sending(harness, lambda: PROVIDER.fetch_result(harness.conn, ref, None))


def test_validate_ref_keeps_only_the_job_id() -> None:
    assert PROVIDER.validate_ref({"job_id": "550e8400-e29b-41d4-a716-446655440000", "x": 1}) == {
        "job_id": "550e8400-e29b-41d4-a716-446655440000"
    }


# -- odd vendor answers (a scripted vendor) -------------------------------------------------------------------


@pytest.fixture
def odd(scripted: ScriptedVendor, harness: VendorHarness) -> tuple[VendorConnection, ScriptedVendor]:
    """The provider pointed at a vendor whose answers the test scripts (anything else: 404 Job not found)."""
    scripted.default = Answer(404, {"detail": "Job not found"})
    return harness.connect(base_url=scripted.url), scripted


async def test_doc_result_example_verbatim(odd: Any) -> None:
    conn, vendor = odd
    job_id = "550e8400-e29b-41d4-a716-446655440000"
    vendor.on("GET", f"/v1/jobs/{job_id}/result", 200, json.loads(DOC_RESULT_EXAMPLE))
    parts = await PROVIDER.fetch_result(conn, {"job_id": job_id}, {"status": "completed"})
    assert parts.outputs == [
        Output(
            name="0",
            source="Die Qualität unserer Produkte spricht für sich.",
            target="The quality of our products speaks for itself.",
            status="done",
            quality=96.5,
        )
    ]
    assert parts.usage == Usage(
        input_tokens=1200,
        output_tokens=800,
        cost=Cost(amount=0.0014, currency="EUR"),
        units=[UnitCount(unit=Unit.WORDS, quantity=8), UnitCount(unit=Unit.SEGMENTS, quantity=1)],
    )
    assert parts.issues == []
    assert parts.vendor == json.loads(DOC_RESULT_EXAMPLE)


async def test_structured_delivery_notes_become_issues(odd: Any) -> None:
    conn, vendor = odd
    notes = [
        {"type": "terminology", "message": "'Qualität' not applied", "segment_id": 2, "suggestion": "Check glossary"},
        {"type": "length_deviation", "detail": "Target 60% longer"},
        {"type": "source_error"},
        "a free-text note",
        {"message": "no type"},
        {"type": 5},
        None,
    ]
    vendor.on("GET", "/v1/jobs/j1/result", 200, {"status": "completed", "segments": [], "delivery_notes": notes})
    parts = await PROVIDER.fetch_result(conn, {"job_id": "j1"}, None)
    assert [i.model_dump() for i in parts.issues] == [
        {"code": "terminology", "message": "'Qualität' not applied", "target": "2", "hint": "Check glossary"},
        {"code": "length_deviation", "message": "Target 60% longer", "target": None, "hint": None},
        {"code": "source_error", "message": None, "target": None, "hint": None},
    ]
    assert parts.usage is None


async def test_needs_review_result_without_any_warning_uses_the_fixed_sentence(odd: Any) -> None:
    conn, vendor = odd
    vendor.on("GET", "/v1/jobs/j2/result", 200, {"status": "needs_review", "warning": None})
    parts = await PROVIDER.fetch_result(conn, {"job_id": "j2"}, {"status": "needs_review"})
    assert [(i.code, i.message) for i in parts.issues] == [("needs_review", NEEDS_REVIEW_MESSAGE)]


async def test_result_status_falls_back_to_the_status_body(odd: Any) -> None:
    conn, vendor = odd
    result = {"segments": [{"id": 3, "status": "blocked", "source": "<b>x", "translation": None}]}
    vendor.on("GET", "/v1/jobs/j3/result", 200, result)
    status_body = {"status": "completed_with_blocks", "segments": [{"id": 3, "status": "blocked", "error": "tags"}]}
    parts = await PROVIDER.fetch_result(conn, {"job_id": "j3"}, status_body)
    assert [(i.code, i.target, i.message) for i in parts.issues] == [("blocked", "3", "tags")]


@pytest.mark.parametrize("body", [[], "text", 3, None])
async def test_result_that_is_not_an_object_is_malformed(odd: Any, body: Any) -> None:
    conn, vendor = odd
    vendor.on("GET", "/v1/jobs/j4/result", 200, body)
    with pytest.raises(VendorMalformed):
        await PROVIDER.fetch_result(conn, {"job_id": "j4"}, None)


async def test_result_with_strange_fields_still_reads(odd: Any) -> None:
    conn, vendor = odd
    body = {
        "status": "completed",
        "segments": [None, {"id": True, "qa_score": "high", "translation": 5}, {"id": 1, "translation": "ok"}],
        "token_usage": {"input": "many", "output": 10},
        "cost_eur": True,
        "delivery_notes": "none",
    }
    vendor.on("GET", "/v1/jobs/j5/result", 200, body)
    parts = await PROVIDER.fetch_result(conn, {"job_id": "j5"}, None)
    assert parts.outputs == [Output(), Output(name="1", target="ok")]
    assert parts.usage == Usage(
        input_tokens=None, output_tokens=10, cost=None, units=[UnitCount(unit=Unit.SEGMENTS, quantity=2)]
    )  # the unreadable segment is dropped: two remain


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (202, {"status": "queued"}, VendorMalformed),
        (202, ["job"], VendorMalformed),
        (202, {"job_id": "../admin", "status": "queued"}, VendorMalformed),
        (202, {"job_id": 17, "status": "queued"}, VendorMalformed),
        (409, {"detail": "Duplicate content"}, VendorConflict),
        (409, {"detail": "Duplicate content", "job_id": "a/b"}, VendorMalformed),
        (409, "conflict", VendorConflict),
    ],
)
async def test_submit_with_an_unusable_vendor_answer(odd: Any, status: int, body: Any, error: type) -> None:
    conn, vendor = odd
    vendor.on("POST", "/v1/jobs", status, body)
    with pytest.raises(error):
        await PROVIDER.submit(conn, text_input("x"))


async def test_submit_adopts_a_duplicate_from_the_vendor(odd: Any) -> None:
    conn, vendor = odd
    vendor.on("POST", "/v1/jobs", 409, {"detail": "Duplicate content", "job_id": "job-7", "status": "completed"})
    assert await PROVIDER.submit(conn, text_input("x")) == {"job_id": "job-7"}
    assert vendor.calls[0].path == "/v1/jobs" and json.loads(vendor.calls[0].body)["texts"] == ["x"]


async def test_requests_carry_the_api_key_header(odd: Any, harness: VendorHarness) -> None:
    conn, vendor = odd
    vendor.on("POST", "/v1/jobs", 202, {"job_id": "j", "status": "queued"})
    assert await PROVIDER.submit(conn, text_input("x")) == {"job_id": "j"}
    assert [call.headers.get("X-API-Key") for call in vendor.calls] == [harness.key]


# -- the conformance case works against the simulator ---------------------------------------------------------------
async def test_case_status_patches_give_their_states(harness: VendorHarness) -> None:
    covered = {patch["status"] for patch, _ in CASE.status_patches}
    assert covered == set(PROVIDER.mapping)
    for i, (patch, expected) in enumerate(CASE.status_patches):
        ref = await PROVIDER.submit(harness.conn, text_input(f"Fall {i}.", "Zweiter."))
        await harness.force(CASE.sim_job_id(ref), patch)
        status = PROVIDER.normalize(await PROVIDER.fetch_status(harness.conn, ref))
        assert (status.state, status.vendor_status) == (expected, patch["status"])
        if patch["status"] == "completed_with_blocks":
            assert [(i.code, i.target) for i in status.issues] == [("blocked", "0")]
        if patch["status"] == "needs_review":
            assert [i.message for i in status.issues] == [patch["warning"]]
