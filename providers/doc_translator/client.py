"""The document translator provider: upload a PDF, start its translation, poll it, stream the translated file."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import aiohttp
from pydantic import field_validator, model_validator

from gateway.errors import (
    InputError,
    VendorConflict,
    VendorConnectionError,
    VendorError,
    VendorMalformed,
    VendorNotFound,
    VendorTimeout,
    VendorValidationError,
)
from gateway.inputs import DocumentInput, SubmitInput, parse_input
from gateway.models import ResultParts
from gateway.provider import ArtifactDownload, Capabilities, Provider, ProviderConfig, vendor_given_id
from gateway.states import CanonicalStatus, State
from gateway.tolerant import lenient
from gateway.vendor_http import VendorConnection, path_segment
from providers.doc_translator import mapping as table
from providers.doc_translator.models import TranslateResponse, UploadResponse
from providers.doc_translator.simulator import DocTranslatorSimulator

CHUNK = 64 * 1024
PDF_MAGIC = b"%PDF-"
NATIVE_KEYS = ("file_path", "source_language", "target_language")
_PREFIX_OK = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DocTranslatorConfig(ProviderConfig):
    """Config of the document translator.

    `base_url` is the server root, WITHOUT the vendor's `/api/v1` (e.g. `http://host:8000`, or
    `http://127.0.0.1:8090/doc-translator` for `gateway simulate`). The client puts `api_prefix`
    (default `/api/v1`) in front of every vendor path, so a server mounted elsewhere only changes that key.
    The vendor has no authentication: `api_key_env` is ignored and no auth header is ever sent.
    """

    api_prefix: str = "/api/v1"

    @field_validator("api_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.rstrip("/")
        if not _PREFIX_OK.match(value):
            raise ValueError("must be empty or a path such as /api/v1")
        return value

    @model_validator(mode="after")
    def _not_twice(self) -> DocTranslatorConfig:
        if self.api_prefix and self.base_url.endswith(self.api_prefix):
            raise ValueError(f"base_url is the server root: leave {self.api_prefix} out of it (it is api_prefix)")
        return self


def _prefix(conn: VendorConnection) -> str:
    settings = conn.settings
    return settings.api_prefix if isinstance(settings, DocTranslatorConfig) else "/api/v1"


def _text(input: dict[str, Any], key: str, *, limit: int) -> str:
    """A required, non-empty, single-line string field of the input."""
    value = input.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{key} is required and must be a non-empty string", loc=["input", key])
    if len(value) > limit or _CONTROL.search(value):
        raise InputError(f"{key} must be at most {limit} characters without control characters", loc=["input", key])
    return value.strip()


def _no_extra(input: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    for key in input:
        if key not in allowed:
            raise InputError(f"{what} takes only {', '.join(allowed)}; got {key!r}", loc=["input", str(key)])


def _upload_name(filename: str) -> str:
    """The caller's filename without any directory part, ending in .pdf (the vendor accepts PDF files only)."""
    base = re.split(r"[\\/]", filename)[-1].replace('"', "_").strip()
    if base in ("", ".", ".."):
        raise InputError("filename must name a file", loc=["input", "filename"])
    return base if base.lower().endswith(".pdf") else base + ".pdf"


def multipart_file(filename: str, content: bytes, field: str = "file") -> tuple[bytes, str]:
    """A multipart/form-data body holding one file, and its Content-Type. The filename is written raw (UTF-8,
    as browsers do; FastAPI does not undo percent-quoting) after `_upload_name` removed quotes and paths."""
    boundary = uuid.uuid4().hex
    while boundary.encode() in content:  # pragma: no cover - 128 random bits
        boundary = uuid.uuid4().hex
    name = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def download_filename(value: str | None, fallback: str) -> str:
    """A filename from the vendor's Content-Disposition made harmless (no directories, no control characters)."""
    if not value:
        return fallback
    base = re.split(r"[\\/]", value)[-1]
    base = _CONTROL.sub("", base).replace('"', "").strip()
    if base in ("", ".", ".."):
        return fallback
    return base[:200]


class DocTranslatorProvider(Provider):
    name: ClassVar[str] = "doc_translator"
    display_name: ClassVar[str] = "Document translator (self-hosted)"
    capabilities: ClassVar[Capabilities] = Capabilities(
        cancel=False, artifact=True, progress=True, input_kinds=["native", "document"]
    )
    mapping = table.MAPPING
    mapping_notes = table.MAPPING_NOTES
    config_model: ClassVar[type[ProviderConfig]] = DocTranslatorConfig
    sim_prefix: ClassVar[str | None] = "/doc-translator"
    #: the vendor answers errors as FastAPI does: `{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`
    error_fields = ("detail",)

    # -- pure -------------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        return table.normalize(body)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        """None: the self-hosted translator has no authentication."""
        return {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, dict) or "job_id" not in ref:
            raise InputError("vendor_ref must be an object with the vendor's job_id", loc=["vendor_ref"])
        path_segment(ref["job_id"], name="job_id")
        return {"job_id": str(ref["job_id"])}

    # -- I/O --------------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """Native `{"file_path", "source_language", "target_language"}` (an uploaded file) or a canonical
        `document` input, which is uploaded first and translated from its `upload_id`."""
        input = parse_input(input, kinds=self.capabilities.input_kinds)
        if isinstance(input, DocumentInput):
            content = input.content
            if not content.startswith(PDF_MAGIC):
                raise InputError(
                    "the document translator accepts PDF files only (content must start with %PDF-)",
                    loc=["input", "content_base64"],
                )
            upload_id = await self._upload(conn, _upload_name(input.filename), content)
            return await self._translate(conn, upload_id, input.source_language, input.target_language, native=False)
        if not isinstance(input, dict):
            raise InputError("the document translator takes native input or kind 'document'", loc=["input", "kind"])
        _no_extra(input, NATIVE_KEYS, "a native document translator input")
        file_path = _text(input, "file_path", limit=4096)
        source = _text(input, "source_language", limit=64)
        target = _text(input, "target_language", limit=64)
        return await self._translate(conn, file_path, source, target, native=True)

    async def _upload(self, conn: VendorConnection, filename: str, content: bytes) -> str:
        body, content_type = multipart_file(filename, content)
        # the body goes as plain bytes (an aiohttp FormData object cannot be recorded into a cassette), with its
        # multipart Content-Type as a per-request header
        _, answer = await conn.request_json(
            "POST", _prefix(conn) + "/upload", data=body, headers={"Content-Type": content_type}
        )
        upload = lenient(UploadResponse, answer)
        if upload is None or not upload.upload_id:
            raise VendorMalformed("vendor upload answer has no upload_id", provider=conn.provider)
        return upload.upload_id

    async def _translate(
        self, conn: VendorConnection, file_path: str, source: str, target: str, *, native: bool
    ) -> dict[str, Any]:
        params = {"file_path": file_path, "source_language": source, "target_language": target}
        try:
            _, body = await conn.request_json("POST", _prefix(conn) + "/translate", params=params)
        except VendorNotFound as exc:
            # the vendor answers 404 for a file_path it does not know: for a caller's file_path that is bad input
            if native:
                raise VendorValidationError(
                    exc.message,
                    errors=[{"loc": ["input", "file_path"], "msg": exc.message}],
                    provider=conn.provider,
                    status=exc.status,
                ) from exc
            raise VendorError(
                f"vendor lost the file it had just accepted: {exc.message}", provider=conn.provider, status=exc.status
            ) from exc
        started = lenient(TranslateResponse, body)
        job_id = started.job_id if started is not None else None
        problem = "vendor translate answer has no usable job_id"
        return {"job_id": vendor_given_id(job_id, provider=conn.provider, problem=problem)}

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        job_id = path_segment(ref.get("job_id"), name="job_id")
        _, body = await conn.request_json("GET", f"{_prefix(conn)}/status/{job_id}")
        return body

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """No inline outputs: the translated document is the job's artifact (see `open_artifact`)."""
        body = status_body if isinstance(status_body, dict) else await self.fetch_status(conn, ref)
        vendor = body if isinstance(body, dict) else {}
        done = table.normalize(body).state is State.SUCCEEDED
        return ResultParts(outputs=[], vendor=vendor, has_artifact=done)

    @asynccontextmanager
    async def open_artifact(self, conn: VendorConnection, ref: dict[str, Any]) -> AsyncIterator[ArtifactDownload]:
        """Stream `GET /download/{job_id}` in 64 KiB chunks; never holds the whole file."""
        job_id = path_segment(ref.get("job_id"), name="job_id")
        opened = False
        try:
            async with conn.stream("GET", f"{_prefix(conn)}/download/{job_id}") as resp:
                opened = True
                disposition = resp.content_disposition
                yield ArtifactDownload(
                    content_type=resp.content_type or "application/pdf",
                    filename=download_filename(disposition.filename if disposition else None, f"{ref['job_id']}.pdf"),
                    chunks=_chunks(conn, resp),
                )
        except VendorValidationError as exc:
            if opened:
                raise
            # 400 "Translation not completed": the file is not there yet, the request itself was fine
            raise VendorConflict(exc.message, provider=conn.provider, status=exc.status) from exc

    # -- simulator -----------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> DocTranslatorSimulator:
        return DocTranslatorSimulator(step_s=step_s)


async def _chunks(conn: VendorConnection, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.content.iter_chunked(CHUNK):
            yield chunk
    except TimeoutError as exc:
        raise VendorTimeout("vendor stopped sending the file in time", provider=conn.provider) from exc
    except aiohttp.ClientError as exc:
        raise VendorConnectionError(f"vendor download broke off: {type(exc).__name__}", provider=conn.provider) from exc
