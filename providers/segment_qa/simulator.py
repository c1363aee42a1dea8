"""A local imitation of the Segment-QA jobs API (vendor doc `segment-qa-job-status-and-result.txt`, contract 5, 6).

Routes (relative to the prefix `/segment-qa`), all behind the `X-API-Key` header (any non-empty key except
`invalid`; otherwise 401 `{"detail": "Missing or invalid API key"}`):

- `POST /v1/jobs` `{"mode": "translation", "source_lang", "target_lang", "text" | "texts", "glossary"?,
  "instructions"?, "source_review"?}` -> 202 `{"job_id", "status": "queued"}`. One segment per entry of `texts`;
  a single `text` is split into sentences. Invalid JSON -> 400, an invalid body (mode other than
  "translation", missing or empty languages, neither or both of text/texts, wrong types) -> 422, each with
  `{"detail": str}`. The same texts and languages submitted again -> 409 `{"detail": "Duplicate content",
  "job_id", "status"}` naming the earlier job (a `dead` job's content may be submitted anew).
- `GET /v1/jobs/{job_id}` -> the status body; 404 `{"detail": "Job not found"}`.
- `GET /v1/jobs/{job_id}/result` -> the result body once the status is completed, completed_with_blocks or
  needs_review; before that (and for dead jobs) 409 `{"detail": ..., "status": <current status>}`.

Every `step_s` seconds a job moves one step: queued -> processing with current_step supervisor (segments
appear, pending) -> [source_review when the body asked for it] -> translator (segments processing) ->
translated -> qa (qa_passed) -> finalizing (done) -> completed, current_step null again. Token usage and
cost_eur grow with every step. Markers in an input text steer the outcome of that job:

- `BLOCK`: that segment ends `blocked` (markup conflict) and the job ends `completed_with_blocks`;
- `LOWQ`: that segment fails QA, the job goes through `correcting`, fails QA again and ends `needs_review`
  with a `warning` in the result and a `low_confidence` delivery note (BLOCK wins when both are present);
- `RETRY`: the job passes through `failed` once (an `error_log` entry, retry_count + 1), then resumes;
- `DEAD`: the job fails, retries, fails again and ends `dead` (that segment `failed`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from gateway.sim.base import SimJob, Simulator

RESULT_STATUSES = frozenset({"completed", "completed_with_blocks", "needs_review"})
FINAL_SEGMENT_STATUSES = frozenset({"done", "blocked", "failed"})
MAX_TEXTS = 500
QA_MINIMUM = 85.0
LOW_SCORE = 68.0
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _error(http_status: int, detail: str, **extra: Any) -> web.Response:
    return web.json_response({"detail": detail, **extra}, status=http_status)


def split_sentences(text: str) -> list[str]:
    """A `text` input's segments: its sentences."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part.strip()]


def validate_create(body: Any) -> str | None:
    """The vendor's complaint about a create body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return "Request body must be a JSON object"
    if body.get("mode") != "translation":
        return "mode must be 'translation'"
    for field in ("source_lang", "target_lang"):
        value = body.get(field)
        if value is None:
            return f"{field} is required"
        if not isinstance(value, str) or not value.strip():
            return f"{field} must be a non-empty string"
    has_text, has_texts = body.get("text") is not None, body.get("texts") is not None
    if has_text == has_texts:
        return "Provide exactly one of text or texts"
    if has_text:
        if not isinstance(body["text"], str) or not split_sentences(body["text"]):
            return "text must be a non-empty string"
    else:
        texts = body["texts"]
        if not isinstance(texts, list) or not texts:
            return "texts must be a non-empty list of strings"
        if len(texts) > MAX_TEXTS:
            return f"texts may hold at most {MAX_TEXTS} entries"
        if not all(isinstance(t, str) and t.strip() for t in texts):
            return "texts must be a non-empty list of strings"
    glossary = body.get("glossary")
    if glossary is not None and not (isinstance(glossary, dict) and all(isinstance(v, str) for v in glossary.values())):
        return "glossary must be an object mapping source terms to target terms"
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        return "instructions must be a string"
    if body.get("source_review") is not None and not isinstance(body["source_review"], bool):
        return "source_review must be a boolean"
    return None


class SegmentQASimulator(Simulator):
    prefix: ClassVar[str] = "/segment-qa"

    def __init__(self, step_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(step_s, clock)
        #: (source_lang, target_lang, texts) -> job id, for the vendor's duplicate-content check
        self._by_content: dict[tuple[str, str, tuple[str, ...]], str] = {}

    # -- the vendor's routes --------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/jobs", self._create),
            web.get("/v1/jobs/{job_id}", self._status),
            web.get("/v1/jobs/{job_id}/result", self._result),
        ]

    def check_auth(self, request: web.Request) -> bool:
        return self.key_ok(request.headers.get("X-API-Key"))

    def unauthorized(self) -> web.Response:
        return _error(401, "Missing or invalid API key")

    def not_found(self) -> web.Response:
        return _error(404, "Job not found")

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Request body must be valid JSON")
        problem = validate_create(body)
        if problem is not None:
            return _error(422, problem)
        texts = list(body["texts"]) if body.get("texts") is not None else split_sentences(body["text"])
        key = (body["source_lang"], body["target_lang"], tuple(texts))
        earlier = self.get_job(self._by_content.get(key, ""))
        if earlier is not None and earlier.view.get("status") != "dead":
            return _error(409, "Duplicate content", job_id=earlier.id, status=earlier.view.get("status"))
        review = bool(body.get("source_review"))
        view = {
            "job_id": "",
            "status": "queued",
            "segment_count": 0,
            "segments": [],
            "token_usage": {"input_tokens": 0, "output_tokens": 0},
            "cost_eur": 0.0,
            "error_log": [],
            "created_at": _now(),
            "started_at": None,
            "finished_at": None,
            "current_step": None,
            "source_review_enabled": review,
        }
        job = self.new_job(
            view, body=body, texts=texts, target_lang=body["target_lang"], plan=_plan(texts, review=review)
        )
        job.view["job_id"] = job.id
        self._by_content[key] = job.id
        return web.json_response({"job_id": job.id, "status": "queued"}, status=202)

    async def _status(self, request: web.Request) -> web.Response:
        return self.status_answer(self.get_job(request.match_info["job_id"]))

    async def _result(self, request: web.Request) -> web.Response:
        job = self.get_job(request.match_info["job_id"])
        if job is None:
            return self.not_found()
        status = job.view.get("status")
        if status not in RESULT_STATUSES:
            detail = "Job failed permanently; no result" if status == "dead" else "Job not yet complete"
            return _error(409, detail, status=status)
        return web.json_response(_result_body(job))

    # -- progression ------------------------------------------------------------------------------------
    def step(self, job: SimJob, n: int) -> None:
        plan: list[str] = job.private["plan"]
        if n <= len(plan):
            _PHASES[plan[n - 1]](job)


def _plan(texts: list[str], *, review: bool) -> list[str]:
    """The phases a job goes through, one per step, as its input's markers decide."""
    start = ["supervisor", *(["source_review"] if review else []), "translator"]
    if any("DEAD" in t for t in texts):
        return [*start, "failed", "translator", "dead"]
    retry = ["failed", "translator"] if any("RETRY" in t for t in texts) else []
    correct = ["correcting", "qa_again"] if any("LOWQ" in t for t in texts) else []
    return [*start, *retry, "translated", "qa", *correct, "finalizing", "finished"]


def _segments(job: SimJob) -> list[dict[str, Any]]:
    segments = job.view.get("segments")
    return [s for s in segments if isinstance(s, dict)] if isinstance(segments, list) else []


def _text(job: SimJob, segment: dict[str, Any]) -> str:
    texts: list[str] = job.private["texts"]
    index = segment.get("id")
    return texts[index] if isinstance(index, int) and 0 <= index < len(texts) else ""


def _spend(job: SimJob, input_per_segment: int, output_per_segment: int, segments: int | None = None) -> None:
    """Token usage and cost grow with the work done (EUR 0.50 per million input, 1.00 per million output)."""
    n = len(job.private["texts"]) if segments is None else segments
    usage = job.view.setdefault("token_usage", {"input_tokens": 0, "output_tokens": 0})
    usage["input_tokens"] = int(usage.get("input_tokens") or 0) + input_per_segment * n
    usage["output_tokens"] = int(usage.get("output_tokens") or 0) + output_per_segment * n
    job.view["cost_eur"] = round(usage["input_tokens"] * 0.5e-6 + usage["output_tokens"] * 1.0e-6, 6)


def _move(job: SimJob, old: set[str], new: str) -> None:
    for segment in _segments(job):
        if segment.get("status") in old:
            segment["status"] = new


def _supervisor(job: SimJob) -> None:
    texts = job.private["texts"]
    job.view.update(status="processing", current_step="supervisor", started_at=_now(), segment_count=len(texts))
    job.view["segments"] = [
        {"id": i, "status": "pending", "qa_score": None, "retry_count": 0, "error": None} for i in range(len(texts))
    ]
    _spend(job, 100, 20)


def _source_review(job: SimJob) -> None:
    job.view.update(status="processing", current_step="source_review")
    _spend(job, 80, 10)


def _translator(job: SimJob) -> None:
    job.view.update(status="processing", current_step="translator")
    _move(job, {"pending"}, "processing")
    _spend(job, 120, 80)


def _failed(job: SimJob) -> None:
    job.view.update(status="failed", current_step=None)
    for segment in _segments(job):
        if segment.get("status") == "processing":
            segment["status"] = "pending"
            if any(marker in _text(job, segment) for marker in ("RETRY", "DEAD")):
                segment["retry_count"] = int(segment.get("retry_count") or 0) + 1
    log = job.view.setdefault("error_log", [])
    log.append(f"Attempt {len(log) + 1}: translator worker timed out; the job will be retried")


def _dead(job: SimJob) -> None:
    for segment in _segments(job):
        if "DEAD" in _text(job, segment):
            segment.update(status="failed", error="Translator failed on every attempt")
    job.view.update(status="dead", current_step=None, finished_at=_now())
    job.view.setdefault("error_log", []).append("Retries exhausted: translator failed on every attempt")


def _translated(job: SimJob) -> None:
    job.view.update(status="processing", current_step="translator")
    for segment in _segments(job):
        if segment.get("status") != "processing":
            continue
        if "BLOCK" in _text(job, segment):
            segment.update(status="blocked", error="Markup conflict: unbalanced placeholder tags")
        else:
            segment["status"] = "translated"
    _spend(job, 120, 80)


def _qa(job: SimJob) -> None:
    job.view.update(status="processing", current_step="qa")
    for segment in _segments(job):
        if segment.get("status") != "translated":
            continue
        if "LOWQ" in _text(job, segment):
            segment.update(status="qa_failed", qa_score=61.5)
        else:
            segment.update(status="qa_passed", qa_score=round(90.0 + (segment.get("id", 0) * 1.7) % 8, 1))
    _spend(job, 200, 40)


def _correcting(job: SimJob) -> None:
    job.view.update(status="correcting", current_step="translator")
    failing = [s for s in _segments(job) if s.get("status") == "qa_failed"]
    for segment in failing:
        segment.update(status="correcting", retry_count=int(segment.get("retry_count") or 0) + 1)
    _spend(job, 150, 100, len(failing))


def _qa_again(job: SimJob) -> None:
    job.view.update(status="processing", current_step="qa")
    for segment in _segments(job):
        if segment.get("status") == "correcting":
            segment.update(status="qa_failed", qa_score=LOW_SCORE)
    _spend(job, 200, 40)


def _finalizing(job: SimJob) -> None:
    job.view.update(status="processing", current_step="finalizing")
    _move(job, {"qa_passed", "qa_failed"}, "done")
    _spend(job, 20, 10)


def _finished(job: SimJob) -> None:
    texts = job.private["texts"]
    if any("BLOCK" in t for t in texts):
        status = "completed_with_blocks"
    elif any("LOWQ" in t for t in texts):
        status = "needs_review"
    else:
        status = "completed"
    job.view.update(status=status, current_step=None, finished_at=_now())


_PHASES: dict[str, Callable[[SimJob], None]] = {
    "supervisor": _supervisor,
    "source_review": _source_review,
    "translator": _translator,
    "failed": _failed,
    "dead": _dead,
    "translated": _translated,
    "qa": _qa,
    "correcting": _correcting,
    "qa_again": _qa_again,
    "finalizing": _finalizing,
    "finished": _finished,
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _result_body(job: SimJob) -> dict[str, Any]:
    """The result of a finished job, from its inputs and the (possibly forced) status view."""
    texts: list[str] = job.private["texts"]
    target_lang: str = job.private["target_lang"]
    by_id = {s.get("id"): s for s in _segments(job)}
    segments: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    translations: list[str] = []
    for i, source in enumerate(texts):
        seen = by_id.get(i, {})
        status = seen.get("status") if seen.get("status") in FINAL_SEGMENT_STATUSES else "done"
        translated = status == "done"
        score = _number(seen.get("qa_score"))
        if score is None and translated:
            score = LOW_SCORE if "LOWQ" in source else 95.0
        translation = f"[{target_lang}] {source}" if translated else None
        if translation:
            translations.append(translation)
        segments.append(
            {
                "id": i,
                "source": source,
                "translation": translation,
                "qa_score": score if translated else None,
                "status": status,
            }
        )
        if translated and score is not None and score < QA_MINIMUM:
            notes.append(
                {
                    "type": "low_confidence",
                    "segment_id": i,
                    "message": f"QA score {score} is below the minimum of {QA_MINIMUM}",
                    "suggestion": "Have a reviewer check this segment",
                }
            )
    raw_usage = job.view.get("token_usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    tokens_in = int(_number(usage.get("input_tokens")) or 0)
    tokens_out = int(_number(usage.get("output_tokens")) or 0)
    scores = [s["qa_score"] for s in segments if s["qa_score"] is not None]
    status = job.view.get("status")
    warning = None
    if status == "needs_review":
        given = job.view.get("warning")
        default = f"QA score below the minimum of {QA_MINIMUM} after the maximum number of correction loops"
        warning = given if isinstance(given, str) else default
    return {
        "job_id": job.id,
        "status": status,
        "translation": " ".join(translations),
        "segments": segments,
        "cost_eur": _number(job.view.get("cost_eur")) or 0.0,
        "token_usage": {
            "input": tokens_in,
            "output": tokens_out,
            "cache_read": tokens_in // 4,
            "cache_write": 0,
            "total": tokens_in + tokens_out,
        },
        "word_count": {
            "source": sum(len(t.split()) for t in texts),
            "target": sum(len(t.split()) for t in translations),
        },
        "qa_score": round(sum(scores) / len(scores), 1) if scores else None,
        "warning": warning,
        "delivery_notes": notes,
    }
