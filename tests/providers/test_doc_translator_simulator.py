"""The document translator simulator over HTTP: the vendor's routes, progression, retention, control API, faults."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from gateway.testing.clock import FakeClock
from gateway.testing.harness import VendorFactory, VendorHarness
from providers.doc_translator.simulator import PREFIX, DocTranslatorSimulator, make_pdf

API = PREFIX + "/api/v1"
STEP = 10.0


@pytest.fixture
async def harness(vendor: VendorFactory) -> VendorHarness:
    return await vendor("doc_translator", step_s=STEP)


def pdf_form(content: bytes | None = None, filename: str = "report.pdf") -> aiohttp.FormData:
    form = aiohttp.FormData(quote_fields=False)
    data = make_pdf("Hello") if content is None else content
    form.add_field("file", data, filename=filename, content_type="application/pdf")
    return form


async def upload(client: Any, content: bytes | None = None, filename: str = "report.pdf") -> str:
    resp = await client.post(API + "/upload", data=pdf_form(content, filename))
    assert resp.status == 200
    return (await resp.json())["upload_id"]


async def start(client: Any, content: bytes | None = None, target: str = "de") -> str:
    upload_id = await upload(client, content)
    params = {"file_path": upload_id, "source_language": "en", "target_language": target}
    resp = await client.post(API + "/translate", params=params)
    assert resp.status == 200
    return (await resp.json())["job_id"]


async def status_of(client: Any, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"{API}/status/{job_id}")
    assert resp.status == 200
    return await resp.json()


# -- make_pdf -----------------------------------------------------------------------------------------
def test_make_pdf_is_well_formed() -> None:
    pdf = make_pdf("Hi (de) \\ é", padding=5000)
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.endswith(b"%%EOF\n")
    assert len(pdf) > 5000
    start_xref = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))
    assert pdf[start_xref:].startswith(b"xref\n0 6\n")
    offsets = re.findall(rb"(\d{10}) 00000 n ", pdf)
    assert len(offsets) == 5
    for number, offset in enumerate(offsets, start=1):
        assert pdf[int(offset) :].startswith(b"%d 0 obj\n" % number)
    length = int(re.search(rb"/Length (\d+) >>\nstream\n", pdf).group(1))
    stream_at = pdf.index(b"stream\n") + len(b"stream\n")
    assert pdf[stream_at + length :].startswith(b"\nendstream")
    assert b"(Hi \\(de\\) \\\\ ?)" in pdf


# -- the documented requests ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["My Report.pdf", "Überblick Straße 2024.pdf"])
async def test_upload_answers_upload_id_and_filename(client: Any, name: str) -> None:
    resp = await client.post(API + "/upload", data=pdf_form(filename=name))
    assert resp.status == 200
    body = await resp.json()
    assert isinstance(body["upload_id"], str) and body["upload_id"]
    assert body["filename"] == name and body["size"] > 0


@pytest.mark.parametrize(
    ("content", "filename"),
    [(b"plain text, not a pdf", "notes.pdf"), (make_pdf("x"), "notes.txt"), (b"", "empty.pdf")],
)
async def test_upload_refuses_non_pdf(client: Any, content: bytes, filename: str) -> None:
    resp = await client.post(API + "/upload", data=pdf_form(content, filename))
    assert resp.status == 400
    assert await resp.json() == {"detail": "Only PDF files are supported"}


@pytest.mark.parametrize("send", [{"json": {"file": "x"}}, {"data": {"other": "x"}}])
async def test_upload_without_file_is_fastapi_422(client: Any, send: dict[str, Any]) -> None:
    resp = await client.post(API + "/upload", **send)
    assert resp.status == 422
    detail = (await resp.json())["detail"]
    assert detail == [{"type": "missing", "loc": ["body", "file"], "msg": "Field required", "input": None}]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=xx"])
async def test_upload_with_a_broken_multipart_body_is_400(client: Any, content_type: str) -> None:
    resp = await client.post(API + "/upload", data=b"garbage", headers={"Content-Type": content_type})
    assert resp.status == 400
    assert await resp.json() == {"detail": "There was an error parsing the body"}


async def test_translate_answers_started(client: Any) -> None:
    upload_id = await upload(client)
    params = {"file_path": upload_id, "source_language": "en", "target_language": "de"}
    resp = await client.post(API + "/translate", params=params)
    assert resp.status == 200
    body = await resp.json()
    assert set(body) == {"job_id", "status", "type"}
    assert body["status"] == "started" and body["type"] == "advanced" and body["job_id"]


async def test_translate_missing_params_is_fastapi_422(client: Any) -> None:
    resp = await client.post(API + "/translate", params={"file_path": "x"})
    assert resp.status == 422
    detail = (await resp.json())["detail"]
    assert [item["loc"] for item in detail] == [["query", "source_language"], ["query", "target_language"]]
    assert all(item["msg"] == "Field required" and item["type"] == "missing" for item in detail)


async def test_translate_unknown_file_is_404(client: Any) -> None:
    params = {"file_path": "no-such-upload", "source_language": "en", "target_language": "de"}
    resp = await client.post(API + "/translate", params=params)
    assert resp.status == 404
    assert await resp.json() == {"detail": "File not found"}


async def test_status_body_has_every_documented_field(client: Any) -> None:
    job_id = await start(client)
    body = await status_of(client, job_id)
    assert set(body) == {
        "status", "progress", "file_path", "source_language", "target_language", "created_at",
        "output_file", "error", "processing_type", "format_preservation",
    }  # fmt: skip
    assert body["status"] == "started" and body["progress"] == 0
    assert body["source_language"] == "en" and body["target_language"] == "de"
    assert body["output_file"] is None and body["error"] is None
    assert body["processing_type"] == "advanced" and body["format_preservation"] is True
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body["created_at"])


@pytest.mark.parametrize("path", ["status", "download"])
async def test_unknown_job_is_404_job_not_found(client: Any, path: str) -> None:
    resp = await client.get(f"{API}/{path}/00000000-0000-0000-0000-000000000000")
    assert resp.status == 404
    assert await resp.json() == {"detail": "Job not found"}


async def test_no_auth_anything_is_accepted(client: Any) -> None:
    job_id = await start(client)
    for headers in ({}, {"Authorization": "Bearer invalid"}, {"x-api-key": "invalid"}, {"X-API-Key": ""}):
        resp = await client.get(f"{API}/status/{job_id}", headers=headers)
        assert resp.status == 200


# -- progression ------------------------------------------------------------------------------------------
async def test_progression_started_to_completed(client: Any, clock: FakeClock) -> None:
    job_id = await start(client, target="fr")
    seen = []
    for _ in range(6):
        body = await status_of(client, job_id)
        seen.append((body["status"], body["progress"]))
        await clock.advance(STEP)
    assert seen == [
        ("started", 0),
        ("processing", 20),
        ("processing", 50),
        ("processing", 80),
        ("completed", 100),
        ("completed", 100),
    ]
    body = await status_of(client, job_id)
    assert body["output_file"].endswith("_fr.pdf") and body["error"] is None


async def test_fail_marker_ends_in_failed(client: Any, clock: FakeClock) -> None:
    job_id = await start(client, content=make_pdf("please FAIL this"))
    await clock.advance(STEP)
    assert (await status_of(client, job_id))["status"] == "processing"
    await clock.advance(STEP)
    body = await status_of(client, job_id)
    assert body["status"] == "failed" and body["error"].startswith("Translation failed")
    assert body["progress"] == 20 and body["output_file"] is None
    await clock.advance(5 * STEP)
    assert (await status_of(client, job_id))["status"] == "failed"
    resp = await client.get(f"{API}/download/{job_id}")
    assert resp.status == 400


async def test_download_before_completion_is_400(client: Any) -> None:
    job_id = await start(client)
    resp = await client.get(f"{API}/download/{job_id}")
    assert resp.status == 400
    assert await resp.json() == {"detail": "Translation not completed"}


async def test_download_after_completion(client: Any, clock: FakeClock) -> None:
    job_id = await start(client, target="de")
    await clock.advance(4 * STEP)
    resp = await client.get(f"{API}/download/{job_id}")
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert resp.content_disposition is not None and resp.content_disposition.filename == "report_de.pdf"
    data = await resp.read()
    assert data.startswith(b"%PDF-") and b"Translated into de" in data


async def test_artifact_padding_makes_larger_files(client: Any, sim: DocTranslatorSimulator, clock: FakeClock) -> None:
    sim.artifact_padding = 200_000
    job_id = await start(client)
    await clock.advance(4 * STEP)
    data = await (await client.get(f"{API}/download/{job_id}")).read()
    assert len(data) > 200_000 and data.startswith(b"%PDF-")


# -- retention --------------------------------------------------------------------------------------------
async def test_jobs_are_purged_24h_after_they_end(client: Any, clock: FakeClock) -> None:
    job_id = await start(client)
    await clock.advance(4 * STEP)  # completed at created + 4 steps
    assert (await status_of(client, job_id))["status"] == "completed"
    await clock.advance(24 * 3600 - 1)
    assert (await status_of(client, job_id))["status"] == "completed"
    await clock.advance(1)
    for path in ("status", "download"):
        resp = await client.get(f"{API}/{path}/{job_id}")
        assert resp.status == 404 and await resp.json() == {"detail": "Job not found"}
    resp = await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "processing"})
    assert resp.status == 404


async def test_running_jobs_are_not_purged(client: Any, sim: DocTranslatorSimulator, clock: FakeClock) -> None:
    job_id = await start(client)
    await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "processing", "progress": 30})
    await clock.advance(48 * 3600)
    assert (await status_of(client, job_id))["status"] == "processing"


async def test_retention_is_a_setting(client: Any, sim: DocTranslatorSimulator, clock: FakeClock) -> None:
    sim.retention_s = 60
    job_id = await start(client)
    await clock.advance(4 * STEP + 59)
    assert (await client.get(f"{API}/status/{job_id}")).status == 200
    await clock.advance(1)
    assert (await client.get(f"{API}/status/{job_id}")).status == 404


async def test_forced_terminal_state_is_purged_from_when_it_was_forced(client: Any, clock: FakeClock) -> None:
    job_id = await start(client)
    await clock.advance(100 * STEP)
    resp = await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "error", "error": "boom"})
    assert resp.status == 200
    await clock.advance(24 * 3600 - 1)
    assert (await status_of(client, job_id))["status"] == "error"
    await clock.advance(1)
    assert (await client.get(f"{API}/status/{job_id}")).status == 404


# -- control API ----------------------------------------------------------------------------------------------
async def test_control_forces_and_pins_state(client: Any, clock: FakeClock) -> None:
    job_id = await start(client)
    resp = await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "processing", "progress": 45})
    assert resp.status == 200 and (await resp.json())["progress"] == 45
    await clock.advance(10 * STEP)
    body = await status_of(client, job_id)
    assert (body["status"], body["progress"]) == ("processing", 45)


async def test_forced_completed_can_be_downloaded(client: Any) -> None:
    job_id = await start(client)
    await client.post(f"{PREFIX}/__sim__/jobs/{job_id}/state", json={"status": "completed", "progress": 100})
    resp = await client.get(f"{API}/download/{job_id}")
    assert resp.status == 200 and (await resp.read()).startswith(b"%PDF-")


async def test_control_unknown_job_is_404(client: Any) -> None:
    resp = await client.post(f"{PREFIX}/__sim__/jobs/nope/state", json={"status": "failed"})
    assert resp.status == 404


# -- faults and stats -----------------------------------------------------------------------------------------
async def test_stats_count_requests_by_template(client: Any) -> None:
    job_id = await start(client)
    await client.get(f"{API}/status/{job_id}")
    await client.get(f"{API}/status/{job_id}")
    await client.get(f"{API}/download/{job_id}")
    resp = await client.get(f"{PREFIX}/__sim__/stats")
    assert (await resp.json())["requests"] == {
        "POST /api/v1/upload": 1,
        "POST /api/v1/translate": 1,
        "GET /api/v1/status/{job_id}": 2,
        "GET /api/v1/download/{job_id}": 1,
    }
