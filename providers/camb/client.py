"""The CAMB.AI provider: text translation tasks (contract sections 1.1 and 5).

`vendor_ref` is `{"task_id": str}`, with `"run_id"` (as the vendor gives it, an int) added once a status answer
carries one. Canonical text inputs name languages by BCP-47 code; CAMB wants its own integer ids, read from
`GET /source-languages` and `GET /target-languages` once per connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from gateway.errors import InputError, VendorConflict, VendorMalformed, VendorValidationError
from gateway.inputs import SubmitInput, TextInput, parse_input
from gateway.models import Output, ResultParts
from gateway.provider import Capabilities, DemoSettings, Provider, ProviderConfig, texts_of
from gateway.states import CanonicalStatus, Issue, State
from gateway.tolerant import lenient, status_string
from gateway.vendor_http import VendorConnection, path_segment
from providers.camb import mapping as camb_mapping
from providers.camb.models import CambLanguage, CambTaskCreated
from providers.camb.simulator import CambSimulator

#: conn.cache key of the shared language-table fetch (an asyncio.Task of LanguageTables)
LANGUAGES_CACHE_KEY = "camb.languages"


class CambConfig(ProviderConfig):
    """CAMB.AI needs nothing beyond the common keys; base_url is e.g. https://client.camb.ai/apis."""


class LanguageTable:
    """One of CAMB's language lists, answering BCP-47 codes with CAMB's integer ids."""

    def __init__(self, items: Iterable[CambLanguage]) -> None:
        self.exact: dict[str, int] = {}
        self.by_primary: dict[str, dict[int, str]] = {}
        for item in items:
            if item.id is None or isinstance(item.id, bool) or not item.short_name:
                continue
            code = _norm(item.short_name)
            if not code:
                continue
            self.exact.setdefault(code, item.id)
            self.by_primary.setdefault(code.split("-")[0], {}).setdefault(item.id, code)

    def resolve(self, code: str) -> int:
        """The id for a BCP-47 code: exact short name, else the primary subtag when that is unambiguous.

        Raises LookupError with a message for the caller when no single language fits."""
        wanted = _norm(code)
        if wanted in self.exact:
            return self.exact[wanted]
        primary = wanted.split("-")[0]
        if primary in self.exact:
            return self.exact[primary]
        candidates = self.by_primary.get(primary, {})
        if len(candidates) == 1:
            return next(iter(candidates))
        if candidates:
            names = ", ".join(sorted(candidates.values()))
            raise LookupError(f"{_shown(code)} is ambiguous at CAMB.AI; name one of: {names}")
        raise LookupError(f"{_shown(code)} is not a language CAMB.AI offers here")


class LanguageTables:
    def __init__(self, source: LanguageTable, target: LanguageTable) -> None:
        self.source = source
        self.target = target


class CambProvider(Provider):
    name: ClassVar[str] = "camb"
    display_name: ClassVar[str] = "CAMB.AI"
    #: submit, status and result (the defaults); no cancel, artifact or progress
    capabilities: ClassVar[Capabilities] = Capabilities(input_kinds=["native", "text"])
    mapping: ClassVar[Mapping[str, State]] = camb_mapping.MAPPING
    mapping_notes: ClassVar[Mapping[str, str]] = camb_mapping.MAPPING_NOTES
    config_model: ClassVar[type[ProviderConfig]] = CambConfig
    sim_prefix: ClassVar[str | None] = "/camb/apis"
    #: the vendor answers errors as FastAPI does: `{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`
    error_fields = ("detail",)

    def demo_settings(self) -> DemoSettings:
        """Second on the demo's `text` route."""
        return DemoSettings(routes={"text": 20})

    # -- pure -------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        return camb_mapping.normalize(body)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"x-api-key": api_key} if api_key else {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        """A CAMB vendor_ref: `task_id` (string) and optionally `run_id`; other keys are dropped."""
        if not isinstance(ref, dict):
            raise InputError("vendor_ref must be an object with a task_id", loc=["vendor_ref"])
        task_id = ref.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise InputError("task_id must be a non-empty string", loc=["vendor_ref", "task_id"])
        path_segment(task_id, name="task_id")
        clean: dict[str, Any] = {"task_id": task_id}
        if ref.get("run_id") is not None:
            run_id = ref["run_id"]
            if _usable_run_id(run_id) is None:
                raise InputError("run_id must be an integer or an id string", loc=["vendor_ref", "run_id"])
            clean["run_id"] = run_id
        return clean

    def refine_ref(self, ref: dict[str, Any], status_body: Any) -> dict[str, Any]:
        """Adds the vendor's `run_id` (kept as given) once a status answer carries a usable one."""
        run_id = _usable_run_id(status_body.get("run_id")) if isinstance(status_body, dict) else None
        if run_id is None or ref.get("run_id") == run_id:
            return ref
        return {**ref, "run_id": run_id}

    def source_texts(self, input: SubmitInput) -> list[str] | None:
        """The canonical input's texts, or a native /translate body's (outputs come back in the same order)."""
        if isinstance(input, TextInput):
            return list(input.texts)
        return texts_of(input) if isinstance(input, dict) else None

    # -- I/O ----------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """POST /translate with a native body, or a canonical text input mapped to CAMB's language ids."""
        input = parse_input(input, kinds=self.capabilities.input_kinds)
        body = await self._native_from_text(conn, input) if isinstance(input, TextInput) else _check_native(input)
        try:
            _, answer = await conn.request_json("POST", "/translate", json_body=body)
        except VendorValidationError as exc:
            raise _without_body_loc(exc) from exc
        created = lenient(CambTaskCreated, answer)
        task_id = created.task_id if created is not None else None
        if not task_id:
            raise VendorMalformed("CAMB.AI accepted the task without a task_id", provider=self.name)
        try:
            path_segment(task_id, name="task_id")
        except InputError:
            raise VendorMalformed("CAMB.AI answered with an unusable task_id", provider=self.name) from None
        return {"task_id": task_id}

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        """The raw body of GET /translate/{task_id}."""
        task_id = path_segment(_ref_dict(ref).get("task_id"), name="task_id")
        _, body = await conn.request_json("GET", f"/translate/{task_id}")
        return body

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """GET /translation-result/{run_id}: one output per text, named by its index, in input order.

        `source` is None here (the vendor's result does not repeat the input); the gateway fills it in from
        the texts it kept at submit (`source_texts`)."""
        ref = _ref_dict(ref)
        run_id = ref.get("run_id")
        if run_id is None and isinstance(status_body, dict):
            run_id = _usable_run_id(status_body.get("run_id"))
        if run_id is None:
            fresh = await self.fetch_status(conn, ref)
            run_id = _usable_run_id(fresh.get("run_id")) if isinstance(fresh, dict) else None
            if run_id is None:
                status = status_string(fresh)
                if status == "SUCCESS":
                    raise VendorMalformed("CAMB.AI reported SUCCESS without a run_id", provider=self.name)
                raise VendorConflict(
                    f"CAMB.AI has no result for this task yet (status {status!r})", body=fresh, provider=self.name
                )
        segment = path_segment(run_id, name="run_id")
        _, body = await conn.request_json("GET", f"/translation-result/{segment}")
        texts = body.get("texts") if isinstance(body, dict) else None
        if not isinstance(texts, list):
            raise VendorMalformed("CAMB.AI's translation result has no list of texts", provider=self.name)
        outputs: list[Output] = []
        issues: list[Issue] = []
        for index, text in enumerate(texts):
            if isinstance(text, str):
                outputs.append(Output(name=str(index), target=text))
            else:
                outputs.append(Output(name=str(index), target=None))
                issues.append(
                    Issue(code="invalid_translation", message="CAMB.AI returned no text here", target=str(index))
                )
        return ResultParts(outputs=outputs, issues=issues, vendor=body)

    # -- languages ----------------------------------------------------------------------------
    async def languages(self, conn: VendorConnection) -> LanguageTables:
        """CAMB's source and target language tables, fetched at most once per connection.

        Concurrent callers share one fetch; a fetch that fails is forgotten so that a later call tries again."""
        task = conn.cache.get(LANGUAGES_CACHE_KEY)
        if task is None:
            task = asyncio.ensure_future(self._fetch_languages(conn))
            conn.cache[LANGUAGES_CACHE_KEY] = task

            def forget_failure(done: asyncio.Future[LanguageTables]) -> None:
                if (done.cancelled() or done.exception() is not None) and conn.cache.get(LANGUAGES_CACHE_KEY) is done:
                    del conn.cache[LANGUAGES_CACHE_KEY]

            task.add_done_callback(forget_failure)
        return await asyncio.shield(task)

    async def _fetch_languages(self, conn: VendorConnection) -> LanguageTables:
        (_, source), (_, target) = await asyncio.gather(
            conn.request_json("GET", "/source-languages"), conn.request_json("GET", "/target-languages")
        )
        return LanguageTables(self._table(source, "source"), self._table(target, "target"))

    def _table(self, body: Any, kind: str) -> LanguageTable:
        if not isinstance(body, list):
            raise VendorMalformed(f"CAMB.AI's {kind} language list is not a list", provider=self.name)
        return LanguageTable(item for item in (lenient(CambLanguage, raw) for raw in body) if item is not None)

    async def _native_from_text(self, conn: VendorConnection, input: TextInput) -> dict[str, Any]:
        tables = await self.languages(conn)
        ids: dict[str, int] = {}
        for field, code, table in (
            ("source_language", input.source_language, tables.source),
            ("target_language", input.target_language, tables.target),
        ):
            try:
                ids[field] = table.resolve(code)
            except LookupError as exc:
                raise InputError(f"{field}: {exc}", loc=["input", field]) from None
        return {**ids, "texts": list(input.texts)}

    # -- simulator ------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> CambSimulator:
        return CambSimulator(step_s)


def _norm(code: str) -> str:
    return code.strip().lower().replace("_", "-")


def _without_body_loc(exc: VendorValidationError) -> VendorValidationError:
    """FastAPI's locations start with "body"; the native input is that body, so errors point into the input."""
    errors = []
    for error in exc.errors:
        loc = list(error.get("loc") or ["input"])
        if loc[:2] == ["input", "body"]:
            loc = ["input", *loc[2:]]
        errors.append({**error, "loc": loc})
    summary = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'input'}: {e.get('msg')}" for e in errors[:5])
    return VendorValidationError(
        f"CAMB.AI rejected the task: {summary}", errors=errors, provider=exc.provider, status=exc.status
    )


def _shown(code: str) -> str:
    return repr(code if len(code) <= 40 else code[:40] + "...")


def _ref_dict(ref: Any) -> dict[str, Any]:
    if not isinstance(ref, dict):
        raise InputError("vendor_ref must be an object with a task_id", loc=["vendor_ref"])
    return ref


def _usable_run_id(value: Any) -> int | str | None:
    """The run id as given when it can name a URL path segment (an int, or an id string), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        path_segment(value, name="run_id")
    except InputError:
        return None
    return value


def _check_texts(texts: Any) -> list[str]:
    if not isinstance(texts, list) or not texts:
        raise InputError("texts must be a non-empty list of strings", loc=["input", "texts"])
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError("each text must be a string", loc=["input", "texts", index])
    return list(texts)


def _check_native(input: SubmitInput) -> dict[str, Any]:
    """A native /translate body with its required fields present and typed; the vendor judges the values."""
    if not isinstance(input, dict):
        raise InputError("camb takes its native /translate body or a canonical text input", loc=["input", "kind"])
    for field in ("source_language", "target_language"):
        value = input.get(field)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{field} must be a CAMB.AI language id (integer)", loc=["input", field])
    _check_texts(input.get("texts"))
    for field in ("formality", "gender", "age"):
        value = input.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InputError(f"{field} must be an integer", loc=["input", field])
    return dict(input)
