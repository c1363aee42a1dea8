"""The Segment-QA provider: submit, status and result against the vendor's `/v1/jobs` API (contract section 5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.errors import InputError, VendorConflict, VendorMalformed
from gateway.inputs import SubmitInput, TextInput, parse_input
from gateway.models import Cost, Output, ResultParts, Unit, UnitCount, Usage
from gateway.provider import Capabilities, DemoSettings, Provider, ProviderConfig, vendor_given_id
from gateway.sim.base import Simulator
from gateway.states import CanonicalStatus, Issue, State
from gateway.tolerant import lenient, status_string
from gateway.vendor_http import VendorConnection, path_segment
from providers.segment_qa import mapping as qa_mapping
from providers.segment_qa.models import CreateAccepted, DuplicateContent, JobResult, JobStatus
from providers.segment_qa.simulator import SegmentQASimulator

AUTH_HEADER = "X-API-Key"


class SegmentQAProvider(Provider):
    """Segment-QA jobs: one vendor job per submitted text set, one output per segment, usage in EUR."""

    name: ClassVar[str] = "segment_qa"
    display_name: ClassVar[str] = "Segment-QA translation pipeline"
    capabilities: ClassVar[Capabilities] = Capabilities(
        submit=True, status=True, result=True, cancel=False, artifact=False, progress=True,
        input_kinds=["native", "text"],
    )  # fmt: skip
    mapping: ClassVar[Mapping[str, State]] = qa_mapping.MAPPING
    mapping_notes: ClassVar[Mapping[str, str]] = qa_mapping.MAPPING_NOTES
    config_model: ClassVar[type[ProviderConfig]] = ProviderConfig
    sim_prefix: ClassVar[str | None] = "/segment-qa"
    #: the vendor answers errors as FastAPI does: `{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`
    error_fields = ("detail",)

    def demo_settings(self) -> DemoSettings:
        """First on the demo's `text` route."""
        return DemoSettings(routes={"text": 10})

    # -- pure -------------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        return qa_mapping.normalize(body)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {AUTH_HEADER: api_key} if api_key else {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        """A vendor_ref is `{"job_id": str}`; the id must be safe to put in a URL path."""
        if not isinstance(ref, dict) or not isinstance(ref.get("job_id"), str) or not ref["job_id"]:
            raise InputError("vendor_ref must be an object with a string job_id", loc=["vendor_ref", "job_id"])
        path_segment(ref["job_id"], name="job_id")
        return {"job_id": ref["job_id"]}

    def create_body(self, input: Any) -> dict[str, Any]:
        """The vendor's create body for a native or canonical text input; InputError when it cannot work.

        Native input is the vendor body itself: only what makes it meaningless is refused here (not an object,
        no languages, no text); value and type checks are left to the vendor, whose 422 detail is more precise.
        `mode` defaults to "translation", the only mode this provider serves.
        """
        input = parse_input(input, kinds=self.capabilities.input_kinds)
        if isinstance(input, TextInput):
            return {
                "mode": "translation",
                "source_lang": input.source_language,
                "target_lang": input.target_language,
                "texts": list(input.texts),
            }
        if not isinstance(input, dict):
            raise InputError("segment_qa takes its native body or a canonical text input", loc=["input", "kind"])
        return self._native_body(input)

    @staticmethod
    def _native_body(input: dict[str, Any]) -> dict[str, Any]:
        body = dict(input)
        body.setdefault("mode", "translation")
        for field in ("source_lang", "target_lang"):
            if body.get(field) is None:
                raise InputError(f"{field} is required", loc=["input", field])
        if body.get("text") is None and body.get("texts") is None:
            raise InputError("either text or texts is required", loc=["input", "texts"])
        return body

    # -- I/O --------------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """Create the vendor job; return `{"job_id"}`.

        The vendor deduplicates by content: a create whose texts and languages it already has answers 409
        "Duplicate content" with the existing job's `job_id`. That job is what the caller asked for, so it is
        adopted and its vendor_ref returned, exactly like a fresh job (users expect the vendor's dedupe to be
        transparent, not an error). A 409 without a usable job_id stays a VendorConflict.
        """
        body = self.create_body(input)
        status, answer = await conn.request_json("POST", "/v1/jobs", json_body=body, allow=(409,))
        if status == 409:
            duplicate = lenient(DuplicateContent, answer)
            if duplicate is None or not duplicate.job_id:
                detail = (duplicate.detail if duplicate else None) or "vendor reported a conflict"
                raise VendorConflict(conn.scrub(detail), body=answer, provider=self.name, status=409)
            return self._ref_from_vendor(duplicate.job_id)
        accepted = lenient(CreateAccepted, answer)
        if accepted is None or not accepted.job_id:
            raise VendorMalformed("vendor accepted the job but sent no job_id", provider=self.name, status=status)
        return self._ref_from_vendor(accepted.job_id)

    def _ref_from_vendor(self, job_id: str) -> dict[str, Any]:
        return {
            "job_id": vendor_given_id(job_id, provider=self.name, problem="vendor sent a job_id that is not a valid id")
        }

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        job_id = path_segment(self.validate_ref(ref)["job_id"], name="job_id")
        _, body = await conn.request_json("GET", f"/v1/jobs/{job_id}")
        return body

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """The finished job's result: one output per segment, usage in EUR, issues as the status mapping gives
        them (blocked segments, needs_review with the result's warning) plus structured delivery notes.
        A 409 (not complete yet) raises VendorConflict."""
        job_id = path_segment(self.validate_ref(ref)["job_id"], name="job_id")
        _, body = await conn.request_json("GET", f"/v1/jobs/{job_id}/result")
        result = lenient(JobResult, body)
        if result is None:
            raise VendorMalformed("vendor result is not a JSON object", provider=self.name)
        return ResultParts(
            outputs=[
                Output(
                    name=qa_mapping.segment_target(seg.id),
                    source=seg.source,
                    target=seg.translation,
                    status=seg.status,
                    quality=seg.qa_score,
                )
                for seg in result.segments
            ],
            usage=_usage(result),
            issues=_result_issues(result, status_body),
            vendor=body,
        )

    # -- simulator --------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> Simulator | None:
        return SegmentQASimulator(step_s)


def _usage(result: JobResult) -> Usage | None:
    """Tokens and EUR as the vendor bills them; its source word count and the number of segments as units."""
    tokens = result.token_usage
    cost = Cost(amount=result.cost_eur, currency="EUR") if result.cost_eur is not None else None
    units = []
    words = result.word_count.source if result.word_count is not None else None
    if words is not None and words >= 0:
        units.append(UnitCount(unit=Unit.WORDS, quantity=words))
    if result.segments:
        units.append(UnitCount(unit=Unit.SEGMENTS, quantity=len(result.segments)))
    if tokens is None and cost is None and not units:
        return None
    return Usage(
        input_tokens=tokens.input if tokens else None,
        output_tokens=tokens.output if tokens else None,
        cost=cost,
        units=units,
    )


def _result_issues(result: JobResult, status_body: Any) -> list[Issue]:
    """Issues of contract 1.1 for the result's status (falling back to the last status body's), plus notes.

    The needs_review message is the result's `warning` (the status body's, should the result lack one).

    Blocked segments come from the result's segments; their error message (which only the status body
    carries) is taken from the status body's segment of the same id when there is one.
    """
    status = result.status or status_string(status_body)
    known = (lenient(JobStatus, status_body) if isinstance(status_body, dict) else None) or JobStatus()
    issues: list[Issue] = []
    if status == "completed_with_blocks":
        errors = {s.id: s.error for s in known.segments if s.id is not None}
        issues = qa_mapping.blocked_issues(
            (s.id, s.status, None if s.id is None else errors.get(s.id)) for s in result.segments
        )
    elif status == "needs_review":
        issues = [qa_mapping.needs_review_issue(result.warning or known.warning)]
    return issues + qa_mapping.delivery_note_issues(result.delivery_notes)
