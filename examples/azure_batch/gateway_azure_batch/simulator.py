"""A faithful local imitation of the vendor (its API is described in this package's README.md).

Batches move one step per `step_s`: NotStarted -> Running -> Succeeded (or Failed when every document failed).
Markers in a document's text choose other endings: `FAIL_DOC` fails that document, `VALIDATION_FAIL` makes the
whole batch ValidationFailed. The control API of every simulator (`gateway.sim.base`) forces statuses and
injects faults; the `quota_exceeded` fault answers as this vendor does, HTTP 456.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from gateway.sim.base import SimJob, Simulator

SUPPORTED = frozenset({"en", "de", "fr", "es", "it", "nl", "pt", "ja", "zh"})
FINISHED_DOCUMENT = frozenset({"Succeeded", "Failed", "Cancelled"})
TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled", "ValidationFailed"})
MAX_DOCUMENTS = 50


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AzureBatchSimulator(Simulator):
    prefix: ClassVar[str] = "/azure-batch"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/batches", self.create),
            web.post("/batches/{batch_id}/status", self.status),
            web.post("/batches/{batch_id}/documents", self.documents),
            web.post("/batches/{batch_id}/documents/{document_id}/content", self.content),
            web.delete("/batches/{batch_id}", self.cancel),
        ]

    auth_header: ClassVar[str] = "Ocp-Apim-Subscription-Key"

    def check_auth(self, request: web.Request) -> bool:
        return self.key_ok(request.headers.get(self.auth_header))

    def unauthorized(self) -> web.Response:
        return _error(401, "Unauthorized", "Access denied due to invalid subscription key or wrong API endpoint.")

    def not_found(self) -> web.Response:
        return _error(404, "NotFound", "The batch does not exist.")

    def quota_exceeded(self) -> web.Response:
        return _error(456, "QuotaExceeded", "The character quota of this subscription is used up for this period.")

    # -- progression ---------------------------------------------------------------------------------
    def step(self, job: SimJob, n: int) -> None:
        if job.view["status"] in TERMINAL or (job.view["status"] == "Cancelling" and n > 1):
            self._finish_cancel(job)
            return
        documents = job.private["documents"]
        if n == 1:
            if any("VALIDATION_FAIL" in d["text"] for d in documents):
                job.view.update(
                    status="ValidationFailed",
                    error={"code": "InvalidDocument", "message": "a document of the batch cannot be translated"},
                )
                for document in documents:
                    document["status"] = "Failed"
                return
            job.view["status"] = "Running"
            for document in documents:
                document.update(status="Running", progress=0.5)
        elif n >= 2:
            for document in documents:
                self._translate(document)
            succeeded = any(d["status"] == "Succeeded" for d in documents)
            job.view["status"] = "Succeeded" if succeeded else "Failed"
            if not succeeded:
                job.view["error"] = {"code": "TranslationFailed", "message": "every document of the batch failed"}

    def _translate(self, document: dict[str, Any]) -> None:
        if document["status"] in FINISHED_DOCUMENT:
            return
        if "FAIL_DOC" in document["text"]:
            document.update(status="Failed", progress=1.0, error={"code": "TranslationFailed", "message": "x"})
            document["error"]["message"] = "the document could not be translated"
            return
        document.update(status="Succeeded", progress=1.0, characterCharged=len(document["text"]))

    def _finish_cancel(self, job: SimJob) -> None:
        if job.view["status"] == "Cancelling":
            job.view["status"] = "Cancelled"
        self._settle(job)

    def _settle(self, job: SimJob) -> None:
        """Documents that agree with a batch status the control API forced (e.g. Succeeded)."""
        status = job.view.get("status")
        for document in job.private["documents"]:
            if document["status"] in FINISHED_DOCUMENT:
                continue
            if status == "Succeeded":
                self._translate(document)
            elif status == "Cancelled":
                document["status"] = "Cancelled"
            elif status in ("Failed", "ValidationFailed"):
                document["status"] = "Failed"

    def _view(self, job: SimJob) -> dict[str, Any]:
        """The batch status as the vendor shows it: summary counted from the documents (unless forced)."""
        self._settle(job)
        documents = job.private["documents"]
        summary = {
            "total": len(documents),
            "failed": sum(d["status"] == "Failed" for d in documents),
            "success": sum(d["status"] == "Succeeded" for d in documents),
            "inProgress": sum(d["status"] == "Running" for d in documents),
            "notYetStarted": sum(d["status"] == "NotStarted" for d in documents),
            "cancelled": sum(d["status"] == "Cancelled" for d in documents),
            "totalCharacterCharged": sum(d.get("characterCharged", 0) for d in documents),
        }
        if job.view.get("summary") == job.private.get("derived"):  # not forced by the control API
            job.view["summary"] = summary
            job.private["derived"] = summary
        if job.view["status"] == "Running" and not job.pinned:  # the vendor estimates once it has started
            job.view["estimatedSecondsRemaining"] = max(0.0, (2 - job.applied) * self.step_s)
        elif not job.pinned:
            job.view.pop("estimatedSecondsRemaining", None)
        job.view["lastActionDateTimeUtc"] = _now()
        return job.view

    # -- the vendor's endpoints ---------------------------------------------------------------------------
    async def create(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if body is None:
            return _error(400, "InvalidRequest", "The request body must be a JSON object.")
        problem = _check_create(body)
        if problem:
            return _error(400, "InvalidRequest", problem)
        documents = [
            {
                "id": secrets.token_hex(8),
                "name": d["name"],
                "status": "NotStarted",
                "progress": 0.0,
                "text": base64.b64decode(d["content"]).decode("utf-8"),
                "to": body["targetLanguage"],
            }
            for d in body["documents"]
        ]
        batch_id = secrets.token_hex(12)
        key = "bk_" + secrets.token_urlsafe(24)
        view = {"id": batch_id, "status": "NotStarted", "createdDateTimeUtc": _now(), "summary": None}
        self.new_job(view, job_id=batch_id, key=key, documents=documents, derived=None)
        location = str(request.url.with_path(request.path.rstrip("/") + f"/{batch_id}").with_query(None))
        return web.json_response(
            {"id": batch_id, "batchKey": key}, status=202, headers={"Operation-Location": location}
        )

    async def _batch(self, request: web.Request) -> SimJob | web.Response:
        """The batch named in the path, if the body carries its key."""
        job = self.get_job(request.match_info["batch_id"])
        if job is None:
            return self.not_found()
        body = await _json(request)
        if body is None or body.get("batchKey") != job.private["key"]:
            return _error(403, "Forbidden", "The batch key is missing or does not match the batch.")
        return job

    async def status(self, request: web.Request) -> web.Response:
        job = await self._batch(request)
        return job if isinstance(job, web.Response) else web.json_response(self._view(job))

    async def documents(self, request: web.Request) -> web.Response:
        job = await self._batch(request)
        if isinstance(job, web.Response):
            return job
        self._settle(job)
        shown = [{k: v for k, v in d.items() if k not in ("text", "downloaded")} for d in job.private["documents"]]
        return web.json_response({"value": shown})

    async def content(self, request: web.Request) -> web.Response:
        job = await self._batch(request)
        if isinstance(job, web.Response):
            return job
        self._settle(job)
        found = [d for d in job.private["documents"] if d["id"] == request.match_info["document_id"]]
        if not found:
            return _error(404, "NotFound", "The document does not exist.")
        document = found[0]
        if document["status"] != "Succeeded":
            return _error(409, "NotReady", "The document has not been translated.")
        if document.get("downloaded"):
            return _error(410, "AlreadyRetrieved", "The translated document was already downloaded; it is kept once.")
        document["downloaded"] = True
        return web.Response(text=f"[{document['to']}] {document['text']}", content_type="text/plain")

    async def cancel(self, request: web.Request) -> web.Response:
        job = await self._batch(request)
        if isinstance(job, web.Response):
            return job
        if job.view["status"] in TERMINAL:
            return _error(409, "InvalidOperation", f"The batch is already {job.view['status']}.")
        if job.view["status"] == "NotStarted":
            job.view["status"] = "Cancelled"
        else:
            job.view["status"] = "Cancelling"
            for document in job.private["documents"]:
                if document["status"] == "NotStarted":
                    document["status"] = "Cancelled"
        return web.json_response(self._view(job))


def _check_create(body: dict[str, Any]) -> str | None:
    """What is wrong with a create body, as the vendor says it; None when nothing."""
    target = body.get("targetLanguage")
    if not isinstance(target, str) or target.split("-")[0].lower() not in SUPPORTED:
        return f"targetLanguage {target!r} is not a supported language"
    source = body.get("sourceLanguage")
    if source is not None and (not isinstance(source, str) or source.split("-")[0].lower() not in SUPPORTED):
        return f"sourceLanguage {source!r} is not a supported language"
    documents = body.get("documents")
    if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_DOCUMENTS:
        return f"documents must list 1 to {MAX_DOCUMENTS} documents"
    for index, document in enumerate(documents):
        if not isinstance(document, dict) or not isinstance(document.get("name"), str) or not document["name"]:
            return f"documents[{index}].name is required"
        try:
            base64.b64decode(document.get("content") or "", validate=True).decode("utf-8")
        except (binascii.Error, ValueError, TypeError):
            return f"documents[{index}].content must be base64 of a UTF-8 text document"
    return None


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
