"""DocTranslatorProvider's async methods against the live simulator (and a few deliberately odd vendors)."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pydantic
import pytest

from gateway.errors import (
    InputError,
    UnsupportedOperation,
    VendorConflict,
    VendorError,
    VendorMalformed,
    VendorNotFound,
    VendorServerError,
    VendorValidationError,
)
from gateway.states import State
from gateway.testing.harness import VendorFactory, VendorHarness
from gateway.vendor_http import VendorConnection
from providers.doc_translator.client import DocTranslatorConfig, DocTranslatorProvider
from providers.doc_translator.simulator import DocTranslatorSimulator, make_pdf
from support.refusals import refused_before_sending
from support.scripted import ScriptedVendor

STEP = 10.0
PROVIDER = DocTranslatorProvider()
PDF = make_pdf("Quarterly report")


def document(**fields: Any) -> dict[str, Any]:
    base = {
        "kind": "document",
        "source_language": "en",
        "target_language": "de",
        "filename": "report.pdf",
        "content_base64": base64.b64encode(PDF).decode(),
    }
    base.update(fields)
    return base


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("doc_translator", sim=DocTranslatorSimulator(step_s=STEP, artifact_padding=200_000))


async def submitted(harness: VendorHarness, **fields: Any) -> dict[str, Any]:
    return await PROVIDER.submit(harness.conn, document(**fields))


# -- submit ------------------------------------------------------------------------------------------------
async def test_submit_document_uploads_then_translates(harness: VendorHarness) -> None:
    ref = await submitted(harness)
    assert set(ref) == {"job_id"} and ref["job_id"] in harness.sim.jobs
    assert dict(harness.sim.stats) == {"POST /api/v1/upload": 1, "POST /api/v1/translate": 1}
    [(upload_id, upload)] = harness.sim.uploads.items()
    assert upload == {"filename": "report.pdf", "content": PDF}
    view = harness.sim.jobs[ref["job_id"]].view
    assert view["file_path"] == upload_id
    assert (view["source_language"], view["target_language"], view["status"]) == ("en", "de", "started")


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ('Überblick "Q3".pdf', "Überblick _Q3_.pdf"),
        ("../../etc/report", "report.pdf"),
        ("C:\\Users\\me\\scan.PDF", "scan.PDF"),
    ],
)
async def test_submit_document_filename_is_reduced_to_a_pdf_name(harness: VendorHarness, given: str, sent: str) -> None:
    await submitted(harness, filename=given)
    [upload] = harness.sim.uploads.values()
    assert upload["filename"] == sent


async def test_submit_document_accepts_wrapped_base64(harness: VendorHarness) -> None:
    encoded = base64.encodebytes(PDF).decode()  # with newlines every 76 characters
    ref = await submitted(harness, content_base64=encoded)
    assert ref["job_id"] in harness.sim.jobs
    assert next(iter(harness.sim.uploads.values()))["content"] == PDF


async def test_submit_native_with_an_uploaded_file(harness: VendorHarness) -> None:
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", PDF, filename="mine.pdf", content_type="application/pdf")
    async with harness.session.post(harness.base_url + "/api/v1/upload", data=form) as resp:
        upload_id = (await resp.json())["upload_id"]
    native = {"file_path": upload_id, "source_language": "en", "target_language": "fr"}
    ref = await PROVIDER.submit(harness.connect(), native)
    assert harness.sim.jobs[ref["job_id"]].view["target_language"] == "fr"
    assert dict(harness.sim.stats) == {"POST /api/v1/upload": 1, "POST /api/v1/translate": 1}


async def test_submit_native_unknown_file_is_a_validation_error_with_the_vendor_detail(harness: VendorHarness) -> None:
    native = {"file_path": "no-such-upload", "source_language": "en", "target_language": "de"}
    with pytest.raises(VendorValidationError) as info:
        await PROVIDER.submit(harness.connect(), native)
    assert info.value.status == 404 and info.value.message == "File not found"
    assert info.value.errors == [{"loc": ["input", "file_path"], "msg": "File not found"}]
    assert harness.sim.jobs == {}


B64_TEXT = base64.b64encode(b"just text").decode()


@pytest.mark.parametrize(
    ("input", "loc"),
    [
        ("not an object", ["input"]),
        ({"kind": "text", "texts": ["a"], "source_language": "en", "target_language": "de"}, ["input", "kind"]),
        ({"source_language": "en", "target_language": "de"}, ["input", "file_path"]),
        ({"file_path": "u1", "source_language": "en"}, ["input", "target_language"]),
        ({"file_path": "u1", "source_language": "", "target_language": "de"}, ["input", "source_language"]),
        ({"file_path": "u1", "source_language": "en", "target_language": 7}, ["input", "target_language"]),
        ({"file_path": "u1\n", "source_language": "en", "target_language": "de"}, ["input", "file_path"]),
        ({"file_path": "u1", "source_language": "en", "target_language": "de", "x": 1}, ["input", "x"]),
        (document(content_base64="%%% not base64 %%%"), ["input", "content_base64"]),
        (document(content_base64="QUJD="), ["input", "content_base64"]),
        (document(content_base64=B64_TEXT), ["input", "content_base64"]),
        (document(content_base64=""), ["input", "content_base64"]),
        (document(content_base64=None), ["input", "content_base64"]),
        (document(filename=".."), ["input", "filename"]),
        (document(filename="dir/"), ["input", "filename"]),
        (document(filename=None), ["input", "filename"]),
        (document(source_language=None), ["input", "source_language"]),
        (document(target_language="d" * 65), ["input", "target_language"]),
        (document(texts=["a"]), ["input", "texts"]),
    ],
)
async def test_submit_refuses_bad_input_before_any_request(harness: VendorHarness, input: Any, loc: list[Any]) -> None:
    await refused_before_sending(harness, lambda: PROVIDER.submit(harness.conn, input), loc)


async def test_submit_refuses_non_pdf_naming_the_reason(harness: VendorHarness) -> None:
    refused = await refused_before_sending(harness, lambda: submitted(harness, content_base64=B64_TEXT))
    assert "PDF" in str(refused)


# -- status, result, artifact -----------------------------------------------------------------------------------
async def test_status_and_normalize_through_the_progression(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness)
    seen = []
    for _ in range(5):
        status = PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref))
        seen.append((status.state, status.vendor_status, status.progress))
        await harness.clock.advance(STEP)
    assert seen == [
        (State.RUNNING, "started", 0),
        (State.RUNNING, "processing", 20),
        (State.RUNNING, "processing", 50),
        (State.RUNNING, "processing", 80),
        (State.SUCCEEDED, "completed", 100),
    ]


async def test_failing_document_fails_with_the_vendor_error(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness, content_base64=base64.b64encode(make_pdf("FAIL please")).decode())
    await harness.clock.advance(2 * STEP)
    status = PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref))
    assert status.state is State.FAILED and status.error is not None
    assert status.error.code == "vendor_error" and status.error.message.startswith("Translation failed")


async def test_fetch_result_points_at_the_artifact(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness)
    await harness.clock.advance(4 * STEP)
    body = await PROVIDER.fetch_status(conn, ref)
    parts = await PROVIDER.fetch_result(conn, ref, body)
    assert parts.has_artifact is True and parts.outputs == [] and parts.vendor == body
    assert parts.vendor["status"] == "completed" and parts.usage is None


async def test_fetch_result_without_a_status_body_reads_the_status(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness)
    await harness.clock.advance(4 * STEP)
    parts = await PROVIDER.fetch_result(conn, ref, None)
    assert parts.has_artifact is True and parts.vendor["status"] == "completed"
    assert dict(harness.sim.stats)["GET /api/v1/status/{job_id}"] == 1


async def test_fetch_result_of_a_failed_job_has_no_artifact(harness: VendorHarness) -> None:
    parts = await PROVIDER.fetch_result(harness.connect(), {"job_id": "x"}, {"status": "failed", "error": "boom"})
    assert parts.has_artifact is False


async def test_open_artifact_streams_in_chunks(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness, target_language="de")
    await harness.clock.advance(4 * STEP)
    async with PROVIDER.open_artifact(conn, ref) as download:
        assert download.content_type == "application/pdf"
        assert download.filename == "report_de.pdf"
        chunks = [chunk async for chunk in download.chunks]
    assert len(chunks) > 1 and all(0 < len(c) <= 64 * 1024 for c in chunks)
    data = b"".join(chunks)
    assert len(data) > 200_000 and data.startswith(b"%PDF-") and b"Translated into de" in data


async def test_open_artifact_before_completion_is_a_conflict(harness: VendorHarness) -> None:
    ref = await submitted(harness)
    with pytest.raises(VendorConflict, match="Translation not completed"):
        async with PROVIDER.open_artifact(harness.connect(), ref):
            pytest.fail("must not open")


async def test_open_artifact_server_error(harness: VendorHarness) -> None:
    ref = await submitted(harness)
    await harness.clock.advance(4 * STEP)
    await harness.fault("http_500")
    with pytest.raises(VendorServerError):
        async with PROVIDER.open_artifact(harness.connect(), ref):
            pytest.fail("must not open")


async def test_artifact_of_an_unknown_job_is_not_found(harness: VendorHarness) -> None:
    ref = {"job_id": "00000000-0000-0000-0000-000000000000"}
    with pytest.raises(VendorNotFound, match="Job not found"):
        async with PROVIDER.open_artifact(harness.conn, ref):
            pytest.fail("must not open")


async def test_purged_job_is_not_found(harness: VendorHarness) -> None:
    conn = harness.connect()
    ref = await submitted(harness)
    await harness.clock.advance(4 * STEP + 24 * 3600)
    with pytest.raises(VendorNotFound):
        await PROVIDER.fetch_status(conn, ref)
    with pytest.raises(VendorNotFound):
        async with PROVIDER.open_artifact(conn, ref):
            pytest.fail("must not open")


async def test_cancel_is_unsupported(harness: VendorHarness) -> None:
    assert PROVIDER.capabilities.cancel is False
    with pytest.raises(UnsupportedOperation):
        await PROVIDER.cancel(harness.connect(), {"job_id": "x"})


# -- typed vendor errors ---------------------------------------------------------------------------------------
async def test_no_auth_header_is_ever_sent(harness: VendorHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOC_TRANSLATOR_KEY", "sim-key-doc_translator")
    assert PROVIDER.auth_headers("sim-key-doc_translator") == {} and PROVIDER.auth_headers(None) == {}
    conn = harness.connect(api_key_env="DOC_TRANSLATOR_KEY")
    assert conn.headers == {}
    ref = await PROVIDER.submit(conn, document())
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).state is State.RUNNING


async def test_malformed_translate_answer_after_a_good_upload(harness: VendorHarness) -> None:
    await harness.fault("delay", delay_s=0.0)  # lets the upload through unharmed
    await harness.fault("malformed_json")
    with pytest.raises(VendorMalformed):
        await PROVIDER.submit(harness.conn, document())


@pytest.mark.parametrize("ref", [None, {}, {"task_id": "x"}, "job"])
def test_validate_ref_shape(ref: Any) -> None:
    with pytest.raises(InputError):
        PROVIDER.validate_ref(ref)


def test_validate_ref_keeps_only_the_job_id() -> None:
    assert PROVIDER.validate_ref({"job_id": "abc-123", "other": 1}) == {"job_id": "abc-123"}


# -- configuration ------------------------------------------------------------------------------------------------
def test_base_url_must_not_include_the_api_prefix() -> None:
    with pytest.raises(pydantic.ValidationError, match="server root"):
        DocTranslatorConfig(base_url="http://host:8000/api/v1")
    with pytest.raises(pydantic.ValidationError):
        DocTranslatorConfig(base_url="http://host:8000", api_prefix="api v1")
    assert DocTranslatorConfig(base_url="http://host:8000/").api_prefix == "/api/v1"
    assert PROVIDER.config_model is DocTranslatorConfig


async def test_api_prefix_is_configurable(harness: VendorHarness) -> None:
    ref = await submitted(harness)
    conn = PROVIDER.connect(harness.session, DocTranslatorConfig(base_url=harness.base_url + "/api/v1", api_prefix=""))
    assert PROVIDER.normalize(await PROVIDER.fetch_status(conn, ref)).vendor_status == "started"


def test_capabilities() -> None:
    caps = PROVIDER.capabilities
    assert (caps.artifact, caps.progress, caps.cancel) == (True, True, False)
    assert caps.input_kinds == ["native", "document"]
    assert PROVIDER.name == "doc_translator" and PROVIDER.display_name == "Document translator (self-hosted)"


# -- deliberately odd vendors ----------------------------------------------------------------------------------------
API = "/api/v1"


@pytest.fixture
def odd(scripted: ScriptedVendor, harness: VendorHarness) -> tuple[VendorConnection, ScriptedVendor]:
    """The provider pointed at a vendor whose answers the test scripts (paths under /api/v1)."""
    return harness.connect(base_url=scripted.url), scripted


async def test_upload_answer_without_upload_id_is_malformed(odd: Any) -> None:
    conn, vendor = odd
    vendor.on("POST", API + "/upload", 200, {"filename": "a.pdf"})
    with pytest.raises(VendorMalformed, match="upload_id"):
        await PROVIDER.submit(conn, document())


@pytest.mark.parametrize("started", [{"status": "started"}, {"job_id": "a/b"}, ["job"], {"job_id": 5.5}])
async def test_translate_answer_without_usable_job_id_is_malformed(odd: Any, started: Any) -> None:
    conn, vendor = odd
    vendor.on("POST", API + "/upload", 200, {"upload_id": "u1"})
    vendor.on("POST", API + "/translate", 200, started)
    with pytest.raises(VendorMalformed, match="job_id"):
        await PROVIDER.submit(conn, document())


async def test_vendor_losing_its_own_upload_is_a_vendor_error(odd: Any) -> None:
    conn, vendor = odd
    vendor.on("POST", API + "/upload", 200, {"upload_id": "u1"})
    vendor.on("POST", API + "/translate", 404, {"detail": "File not found"})
    with pytest.raises(VendorError) as info:
        await PROVIDER.submit(conn, document())
    assert not isinstance(info.value, VendorValidationError | VendorNotFound)


async def test_upload_rejection_keeps_the_vendor_detail(odd: Any) -> None:
    conn, vendor = odd
    vendor.on("POST", API + "/upload", 400, {"detail": "Only PDF files are supported"})
    with pytest.raises(VendorValidationError) as info:
        await PROVIDER.submit(conn, document())
    assert info.value.errors == [{"loc": ["input"], "msg": "Only PDF files are supported"}]


@pytest.mark.parametrize(
    ("headers", "filename", "content_type"),
    [
        ({}, "job-7.pdf", "application/pdf"),
        ({"Content-Type": "application/octet-stream"}, "job-7.pdf", "application/octet-stream"),
        ({"Content-Disposition": 'attachment; filename="../../etc/passwd"'}, "passwd", "application/pdf"),
        ({"Content-Disposition": 'attachment; filename=".."'}, "job-7.pdf", "application/pdf"),
        (
            {"Content-Disposition": "attachment; filename*=UTF-8''%C3%9Cbersetzt.pdf"},
            "Übersetzt.pdf",
            "application/pdf",
        ),
    ],
)
async def test_download_filename_and_content_type(
    odd: Any, headers: dict[str, str], filename: str, content_type: str
) -> None:
    conn, vendor = odd
    vendor.on(
        "GET",
        API + "/download/job-7",
        200,
        raw=b"%PDF-1.4 tiny",
        headers={"Content-Type": "application/pdf", **headers},
    )
    async with PROVIDER.open_artifact(conn, {"job_id": "job-7"}) as file:
        assert (file.filename, file.content_type) == (filename, content_type)
        assert b"".join([c async for c in file.chunks]) == b"%PDF-1.4 tiny"
