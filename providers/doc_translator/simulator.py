"""A local imitation of the self-hosted document translator (FastAPI, prefix `/api/v1`, no auth).

Served by `gateway simulate` under `/doc-translator`, so the vendor's paths are `/doc-translator/api/v1/...`.

Progression, one step per `step_s` after `/translate`: `started` 0 -> `processing` 20 (extraction done)
-> `processing` 50 -> `processing` 80 (translation done) -> `completed` 100 with `output_file`. A source PDF
whose bytes contain `FAIL` ends in `failed` with an error message after extraction. Ended jobs are purged
`retention_s` (default 24 h, on the simulator's clock) after they end; a purged job answers 404 everywhere.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from gateway.sim.base import SimJob, Simulator
from providers.doc_translator.models import COMPLETED, ENDED_STATUSES, FAILED, PROCESSING, STARTED

PREFIX = "/doc-translator"
API = "/api/v1"
DAY_S = 24 * 3600.0
FAIL_MARKER = b"FAIL"
#: (status, progress) after step n = 1, 2, 3, 4
PROGRESSION = ((PROCESSING, 20), (PROCESSING, 50), (PROCESSING, 80), (COMPLETED, 100))
FAIL_AT_STEP = 2
FAIL_MESSAGE = "Translation failed: the translation engine could not process the extracted content"


def _pdf_text(text: str) -> bytes:
    """Printable ASCII, escaped for a PDF string literal."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)[:200]
    return clean.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("ascii")


def make_pdf(text: str, *, padding: int = 0) -> bytes:
    """A small valid one-page PDF showing `text`; `padding` adds that many bytes of comments to its content stream."""
    lines = [b"BT /F1 12 Tf 72 770 Td (" + _pdf_text(text) + b") Tj ET"]
    row = b"% " + b"x" * 76
    remaining = max(0, padding)
    while remaining > 0:
        piece = row[: max(1, min(len(row), remaining))]
        lines.append(piece)
        remaining -= len(piece) + 1
    content = b"\n".join(lines)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _safe_name(filename: str) -> str:
    """The uploaded name reduced to something harmless for a header (ASCII, no path, no quotes)."""
    base = re.split(r"[\\/]", filename)[-1]
    clean = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")
    return clean[:120] or "document.pdf"


def _missing(names: list[str], where: str) -> web.Response:
    """FastAPI's 422 for missing required parameters."""
    detail = [{"type": "missing", "loc": [where, n], "msg": "Field required", "input": None} for n in names]
    return web.json_response({"detail": detail}, status=422)


class DocTranslatorSimulator(Simulator):
    """The vendor's `/api/v1` routes (upload, translate, status, download) with time-based progression."""

    prefix = PREFIX

    def __init__(
        self,
        step_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        retention_s: float = DAY_S,
        artifact_padding: int = 0,
    ) -> None:
        super().__init__(step_s, clock)
        #: how long after its end a job is kept (the vendor's 24 h cleanup)
        self.retention_s = retention_s
        #: extra bytes in each translated file (to exercise streaming of larger downloads)
        self.artifact_padding = artifact_padding
        #: upload_id -> {"filename", "content"}
        self.uploads: dict[str, dict[str, Any]] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(API + "/upload", self._upload),
            web.post(API + "/translate", self._translate),
            web.get(API + "/status/{job_id}", self._status),
            web.get(API + "/download/{job_id}", self._download),
        ]

    def not_found(self) -> web.Response:
        return web.json_response({"detail": "Job not found"}, status=404)

    # -- progression and retention ---------------------------------------------------------------
    def step(self, job: SimJob, n: int) -> None:
        view = job.view
        if view.get("status") in ENDED_STATUSES:
            return
        if n >= FAIL_AT_STEP and job.private.get("fails"):
            view.update(status=FAILED, error=FAIL_MESSAGE)
        elif n <= len(PROGRESSION):
            status, progress = PROGRESSION[n - 1]
            view.update(status=status, progress=progress)
            if status == COMPLETED:
                view["output_file"] = job.private["output_file"]
        if view.get("status") in ENDED_STATUSES:
            job.private["ended_at"] = job.created + n * self.step_s

    def _note_end(self, job: SimJob) -> None:
        """Remember when a job (also one forced through the control API) reached an ended status."""
        if job.view.get("status") in ENDED_STATUSES:
            job.private.setdefault("ended_at", self.clock())
        else:
            job.private.pop("ended_at", None)

    def _purge(self) -> None:
        """The vendor's cleanup: drop every job that ended `retention_s` ago or earlier."""
        now = self.clock()
        for job in list(self.jobs.values()):
            self.advance(job)
            self._note_end(job)
            ended = job.private.get("ended_at")
            if ended is not None and now - ended >= self.retention_s:
                del self.jobs[job.id]

    def _live_job(self, job_id: str) -> SimJob | None:
        self._purge()
        return self.get_job(job_id)

    async def _control_state(self, request: web.Request) -> web.Response:
        self._purge()
        response = await super()._control_state(request)
        job = self.jobs.get(request.match_info["job_id"])
        if job is not None and response.status == 200:
            job.private.pop("ended_at", None)  # a forced ended status is reached now
            self._note_end(job)
        return response

    # -- the vendor's routes -------------------------------------------------------------------------
    async def _upload(self, request: web.Request) -> web.Response:
        self._purge()
        try:
            form = await request.post() if request.content_type.startswith("multipart/") else {}
        except (ValueError, AssertionError, web.HTTPException):
            return web.json_response({"detail": "There was an error parsing the body"}, status=400)
        field = form.get("file")
        if not isinstance(field, web.FileField):
            return _missing(["file"], "body")
        content = field.file.read()
        filename = field.filename or ""
        if not filename.lower().endswith(".pdf") or not content.startswith(b"%PDF-"):
            return web.json_response({"detail": "Only PDF files are supported"}, status=400)
        upload_id = str(uuid.uuid4())
        self.uploads[upload_id] = {"filename": filename, "content": content}
        answer = {"upload_id": upload_id, "filename": filename, "size": len(content)}
        return web.json_response({**answer, "message": "File uploaded successfully"})

    async def _translate(self, request: web.Request) -> web.Response:
        self._purge()
        names = ("file_path", "source_language", "target_language")
        missing = [n for n in names if n not in request.query]
        if missing:
            return _missing(missing, "query")
        file_path, source, target = (request.query[n] for n in names)
        upload = self.uploads.get(file_path)
        if upload is None:
            return web.json_response({"detail": "File not found"}, status=404)
        view = {
            "status": STARTED,
            "progress": 0,
            "file_path": file_path,
            "source_language": source,
            "target_language": target,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "output_file": None,
            "error": None,
            "processing_type": "advanced",
            "format_preservation": True,
        }
        job = self.new_job(view, upload_id=file_path, fails=FAIL_MARKER in upload["content"])
        stem = _safe_name(upload["filename"]).rsplit(".", 1)[0] or "document"
        target_tag = re.sub(r"[^A-Za-z0-9_-]", "_", target)[:35] or "target"
        job.private["download_name"] = f"{stem}_{target_tag}.pdf"
        job.private["output_file"] = f"/tmp/outputs/{job.id}_{target_tag}.pdf"
        return web.json_response({"job_id": job.id, "status": STARTED, "type": "advanced"})

    async def _status(self, request: web.Request) -> web.Response:
        return self.status_answer(self._live_job(request.match_info["job_id"]))

    async def _download(self, request: web.Request) -> web.Response:
        job = self._live_job(request.match_info["job_id"])
        if job is None:
            return self.not_found()
        if job.view.get("status") != COMPLETED:
            return web.json_response({"detail": "Translation not completed"}, status=400)
        upload = self.uploads.get(job.private["upload_id"], {})
        target = str(job.view.get("target_language") or "")
        text = f"Translated into {target} ({len(upload.get('content', b''))} source bytes)"
        body = make_pdf(text, padding=self.artifact_padding)
        name = job.private["download_name"]
        return web.Response(
            body=body,
            content_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
