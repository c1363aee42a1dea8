"""The document translator's mapping table (contract 1.1) and the totality of its normalize."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gateway.states import CanonicalStatus, State
from gateway.tolerant import lenient
from providers.doc_translator.client import DocTranslatorProvider
from providers.doc_translator.mapping import MAPPING, MAPPING_NOTES, normalize
from providers.doc_translator.models import JobStatus, TranslateResponse, UploadResponse

# the "active job" example of doc-translator-job-status.md, verbatim
DOC_EXAMPLE = """{
  "status": "processing",
  "progress": 45,
  "file_path": "/tmp/uploads/document.pdf",
  "source_language": "en",
  "target_language": "de",
  "created_at": "2023-11-20T15:30:45Z",
  "output_file": null,
  "error": null,
  "processing_type": "advanced",
  "format_preservation": true
}"""


def body(**fields: Any) -> dict[str, Any]:
    base = json.loads(DOC_EXAMPLE)
    base.update(fields)
    return base


def test_doc_example_verbatim() -> None:
    status = normalize(json.loads(DOC_EXAMPLE))
    assert status == CanonicalStatus(state=State.RUNNING, vendor_status="processing", progress=45)
    assert status.terminal is False and status.error is None and status.issues == [] and status.stage is None


def test_doc_example_parses_every_documented_field() -> None:
    parsed = lenient(JobStatus, json.loads(DOC_EXAMPLE))
    assert parsed is not None
    assert parsed.status == "processing" and parsed.progress == 45
    assert parsed.file_path == "/tmp/uploads/document.pdf"
    assert (parsed.source_language, parsed.target_language) == ("en", "de")
    assert parsed.created_at is not None and parsed.created_at.year == 2023
    assert parsed.output_file is None and parsed.error is None
    assert parsed.processing_type == "advanced" and parsed.format_preservation is True


def test_create_bodies_from_contract() -> None:
    started = lenient(TranslateResponse, {"job_id": "j1", "status": "started", "type": "advanced"})
    assert started is not None and (started.job_id, started.status, started.type) == ("j1", "started", "advanced")
    upload = lenient(UploadResponse, {"upload_id": "u1", "filename": "a.pdf", "extra": 1})
    assert upload is not None and (upload.upload_id, upload.filename) == ("u1", "a.pdf")
    assert upload.model_extra == {"extra": 1}


def test_table_rows() -> None:
    assert MAPPING == {
        "started": State.RUNNING,
        "processing": State.RUNNING,
        "completed": State.SUCCEEDED,
        "failed": State.FAILED,
        "error": State.FAILED,
    }
    assert set(MAPPING_NOTES) <= set(MAPPING)
    provider = DocTranslatorProvider()
    assert provider.mapping == MAPPING
    assert provider.describe()["mapping"] == {k: str(v) for k, v in MAPPING.items()}


@pytest.mark.parametrize(
    ("status", "progress", "state"),
    [
        ("started", 0, State.RUNNING),
        ("processing", 20, State.RUNNING),
        ("processing", 45, State.RUNNING),
        ("processing", 80, State.RUNNING),
        ("completed", 100, State.SUCCEEDED),
    ],
)
def test_progress_is_the_vendors(status: str, progress: int, state: State) -> None:
    result = normalize(body(status=status, progress=progress))
    assert (result.state, result.vendor_status, result.progress) == (state, status, progress)
    assert result.error is None and result.action is None and result.issues == []


def test_completed_is_succeeded_and_terminal() -> None:
    result = normalize(body(status="completed", progress=100, output_file="/tmp/outputs/document_de.pdf"))
    assert result.state is State.SUCCEEDED and result.terminal is True and result.error is None


def test_completed_without_progress_counts_as_done() -> None:
    assert normalize({"status": "completed"}).progress == 100


@pytest.mark.parametrize("status", ["failed", "error"])
def test_failed_and_error_carry_the_vendor_error(status: str) -> None:
    result = normalize(body(status=status, progress=20, error="Translation failed: engine crashed"))
    assert result.state is State.FAILED and result.terminal is True
    assert result.error is not None
    assert result.error.code == "vendor_error"
    assert result.error.message == "Translation failed: engine crashed"
    assert result.error.retryable is False
    assert result.vendor_status == status and result.progress == 20


@pytest.mark.parametrize("status", ["failed", "error"])
@pytest.mark.parametrize("error", [None, "", "   ", 42, ["x"], {"message": "m"}])
def test_failed_without_usable_error_text_gets_a_fallback(status: str, error: Any) -> None:
    result = normalize({"status": status, "error": error})
    assert result.state is State.FAILED and result.error is not None
    assert result.error.code == "vendor_error"
    assert status in result.error.message


def test_long_vendor_error_is_cut() -> None:
    result = normalize({"status": "failed", "error": "x" * 10_000})
    assert result.error is not None and len(result.error.message) == 2000


@pytest.mark.parametrize("status", ["queued", "COMPLETED", "Processing", "cancelled", "", "sim_unknown_status"])
def test_unknown_status_strings(status: str) -> None:
    result = normalize(body(status=status))
    assert result.state is State.UNKNOWN and result.vendor_status == status and result.terminal is False
    assert result.error is None


@pytest.mark.parametrize("status", [None, 1, 1.5, True, ["completed"], {"s": "completed"}])
def test_non_string_status_is_unknown_without_vendor_status(status: Any) -> None:
    result = normalize(body(status=status))
    assert result.state is State.UNKNOWN and result.vendor_status is None


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (None, None),
        ("45", None),
        (True, None),
        (math.nan, None),
        (45.7, 45),
        (-5, 0),
        (250, 100),
        (math.inf, None),
        (-math.inf, None),
        ([45], None),
    ],
)
def test_progress_of_strange_types(progress: Any, expected: int | None) -> None:
    result = normalize({"status": "processing", "progress": progress})
    assert result.state is State.RUNNING and result.progress == expected


def test_missing_fields() -> None:
    assert normalize({"status": "processing"}) == CanonicalStatus(state=State.RUNNING, vendor_status="processing")
    assert normalize({}) == CanonicalStatus(state=State.UNKNOWN)


def test_extra_fields_are_ignored() -> None:
    result = normalize(body(status="processing", progress=60, pages=12, nested={"a": [1, 2]}))
    assert (result.state, result.progress) == (State.RUNNING, 60)


def test_null_everywhere() -> None:
    nulls = dict.fromkeys(json.loads(DOC_EXAMPLE))
    assert normalize(nulls) == CanonicalStatus(state=State.UNKNOWN)
    nulls["status"] = "failed"
    result = normalize(nulls)
    assert result.state is State.FAILED and result.error is not None and result.progress is None


def test_wrong_types_everywhere_keep_the_status() -> None:
    weird = {key: {"x": [1]} for key in json.loads(DOC_EXAMPLE)}
    weird["status"] = "processing"
    assert normalize(weird) == CanonicalStatus(state=State.RUNNING, vendor_status="processing")


@pytest.mark.parametrize("raw", [[], [{"status": "completed"}], "completed", "", 0, 7, 1.5, None, True])
def test_non_dict_json(raw: Any) -> None:
    result = normalize(raw)
    assert result.state is State.UNKNOWN and result.vendor_status is None


def test_provider_normalize_is_the_mapping() -> None:
    assert DocTranslatorProvider().normalize({"status": "started", "progress": 0}) == normalize(
        {"status": "started", "progress": 0}
    )
