"""The provider: create a batch, read its status with its secret key, keep its documents, cancel it.

`vendor_ref` is `{"batch_id": str, "batchKey": str}`. The vendor gives `batchKey` once, when the batch is
created, and wants it in the body of every later request about the batch: whoever has it can read or cancel
the batch. It is a *private* ref field: the gateway keeps it (encrypted at rest when a store key is
configured), hands it back to these methods, and never shows it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from gateway.errors import InputError, ResultGone, VendorError, VendorMalformed, VendorQuotaExceeded
from gateway.inputs import DocumentInput, SubmitInput, TextInput, parse_input
from gateway.models import Issue, Output, ResultParts, Unit, UnitCount, Usage
from gateway.provider import Capabilities, Provider, ProviderConfig
from gateway.states import CanonicalStatus, State
from gateway.tolerant import lenient
from gateway.vendor_http import VendorConnection, path_segment
from gateway_azure_batch import mapping as table
from gateway_azure_batch.models import SUCCEEDED, BatchStatus, Created, Documents
from gateway_azure_batch.simulator import AzureBatchSimulator

#: the vendor's header for the account key
AUTH_HEADER = "Ocp-Apim-Subscription-Key"
#: the most documents one batch may hold (the vendor's limit)
MAX_DOCUMENTS = 50
#: what the vendor's batch ids and keys look like
_TOKEN = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")


class AzureBatchProvider(Provider):
    name: ClassVar[str] = "azure_batch"
    display_name: ClassVar[str] = "Azure-style batch document translation (example plugin)"
    capabilities: ClassVar[Capabilities] = Capabilities(
        submit=True, status=True, result=True, cancel=True, artifact=False, progress=True,
        input_kinds=["native", "text", "document"],
    )  # fmt: skip
    mapping: ClassVar[Mapping[str, State]] = table.MAPPING
    mapping_notes: ClassVar[Mapping[str, str]] = table.MAPPING_NOTES
    config_model: ClassVar[type[ProviderConfig]] = ProviderConfig
    sim_prefix: ClassVar[str | None] = AzureBatchSimulator.prefix
    #: the vendor answers errors as `{"error": {"code": "...", "message": "..."}}`
    error_fields: ClassVar[tuple[str, ...]] = ("error.message",)
    #: and HTTP 456 when the account's character quota is used up
    status_errors: ClassVar[Mapping[int, type[VendorError]]] = {456: VendorQuotaExceeded}
    #: the per-batch secret the vendor wants with every request about the batch
    private_ref_fields: ClassVar[frozenset[str]] = frozenset({"batchKey"})

    # -- pure -------------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        return table.normalize(body)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {AUTH_HEADER: api_key} if api_key else {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        """`{"batch_id", "batchKey"}`: the id goes into URLs, the key into bodies; both have the vendor's id
        shape (every I/O method checks the ref this way before anything is sent)."""
        if not isinstance(ref, dict):
            raise InputError("vendor_ref must be an object with batch_id and batchKey", loc=["vendor_ref"])
        for field in ("batch_id", "batchKey"):
            value = ref.get(field)
            if not isinstance(value, str) or not _TOKEN.match(value) or value in (".", ".."):
                message = f"{field} must be the vendor's id (letters, digits, . _ ~ -)"
                raise InputError(message, loc=["vendor_ref", field])
        return {"batch_id": ref["batch_id"], "batchKey": ref["batchKey"]}

    # -- I/O --------------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """One batch: a document input is one document, a text input one document per text (named by its
        index), a native input the vendor's own `POST /batches` body."""
        body = _create_body(parse_input(input, kinds=self.capabilities.input_kinds))
        _, answer = await conn.request_json("POST", "/batches", json_body=body)
        created = lenient(Created, answer)
        if created is None or not created.id or not created.batchKey:
            raise VendorMalformed("the vendor accepted the batch without an id and key", provider=self.name)
        try:
            return self.validate_ref({"batch_id": created.id, "batchKey": created.batchKey})
        except InputError:
            raise VendorMalformed("the vendor answered with an unusable batch id or key", provider=self.name) from None

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        """`POST /batches/{id}/status` with the batch key in the body (the vendor reads status with POST)."""
        ref = self.validate_ref(ref)
        _, body = await conn.request_json("POST", _batch(ref, "/status"), json_body=_key(ref))
        return body

    async def cancel(self, conn: VendorConnection, ref: dict[str, Any]) -> None:
        """`DELETE /batches/{id}`: documents not started are cancelled, the batch goes Cancelling, then Cancelled."""
        ref = self.validate_ref(ref)
        await conn.request_json("DELETE", _batch(ref), json_body=_key(ref))

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """One output per document, with its translated text; billed characters and documents as units.

        The vendor lets each translated document be downloaded once only. When one was already taken (a
        retry after a failure part-way), the result can never be complete again: ResultGone, and the
        gateway ends the job with the issue `result_unavailable`."""
        ref = self.validate_ref(ref)
        _, listed = await conn.request_json("POST", _batch(ref, "/documents"), json_body=_key(ref))
        documents = (lenient(Documents, listed) or Documents()).value
        outputs, issues = [], []
        for document in documents:
            if document.status != SUCCEEDED or not document.id:
                outputs.append(Output(name=document.name, status=document.status))
                if document.error is not None:
                    issues.append(Issue(code=document.error.code or "failed", message=document.error.message,
                                        target=document.name))  # fmt: skip
                continue
            path = _batch(ref, f"/documents/{path_segment(document.id, name='document_id')}/content")
            async with conn.stream("POST", path, json_body=_key(ref), allow=(410,)) as resp:
                raw = await resp.read()
                if resp.status == 410:
                    raise ResultGone(conn.error_for(resp.status, raw, resp.headers).message, provider=self.name)
            outputs.append(Output(name=document.name, target=raw.decode("utf-8", "replace"), status=document.status))
        summary = (lenient(BatchStatus, status_body) or BatchStatus()).summary
        return ResultParts(outputs=outputs, issues=issues, usage=_usage(summary), vendor={"documents": listed})

    # -- simulator --------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> AzureBatchSimulator:
        return AzureBatchSimulator(step_s)


def _batch(ref: dict[str, Any], tail: str = "") -> str:
    return f"/batches/{path_segment(ref['batch_id'], name='batch_id')}{tail}"


def _key(ref: dict[str, Any]) -> dict[str, Any]:
    return {"batchKey": ref["batchKey"]}


def _document(name: str, content: bytes) -> dict[str, str]:
    return {"name": name, "content": base64.b64encode(content).decode()}


def _create_body(input: SubmitInput) -> dict[str, Any]:
    if isinstance(input, TextInput):
        documents = [_document(f"{index}.txt", text.encode()) for index, text in enumerate(input.texts)]
        if len(documents) > MAX_DOCUMENTS:
            raise InputError(f"at most {MAX_DOCUMENTS} texts go into one batch", loc=["input", "texts"])
        return {
            "sourceLanguage": input.source_language,
            "targetLanguage": input.target_language,
            "documents": documents,
        }
    if isinstance(input, DocumentInput):
        try:
            input.content.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(
                "the vendor translates UTF-8 text documents only", loc=["input", "content_base64"]
            ) from None
        return {
            "sourceLanguage": input.source_language,
            "targetLanguage": input.target_language,
            "documents": [_document(input.filename, input.content)],
        }
    if not isinstance(input.get("documents"), list) or not input["documents"]:
        raise InputError("a native batch needs a non-empty list of documents", loc=["input", "documents"])
    return dict(input)


def _usage(summary: Any) -> Usage | None:
    if summary is None or summary.totalCharacterCharged is None:
        return None
    units = [UnitCount(unit=Unit.CHARACTERS, quantity=summary.totalCharacterCharged)]
    if summary.success is not None:
        units.append(UnitCount(unit=Unit.DOCUMENTS, quantity=summary.success))
    return Usage(units=units)
