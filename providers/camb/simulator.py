"""A local imitation of CAMB.AI's translation API (contract sections 5 and 6), served under `/camb/apis`.

Routes (relative to the prefix), all behind the `x-api-key` header (any non-empty key except `invalid`;
a missing or `invalid` key gets 401 `{"detail": "..."}`):

- `GET /source-languages`, `GET /target-languages` -> `[{"id": int, "language": str, "short_name": str}]`
  (short names are lower-case `xx-yy` codes; the target list is a superset of the source list).
- `POST /translate` `{"source_language": int, "target_language": int, "texts": [str], "formality"?: 1|2,
  "gender"?: 0|1|2|9, "age"?: int}` -> `{"task_id": str}`; a bad body gets FastAPI's 422
  `{"detail": [{"loc": ["body", ...], "msg", "type"}]}` (missing or mistyped fields, empty `texts`, a language id
  that is not in the matching list, `formality` not 1|2, `gender` not 0|1|2|9).
- `GET /translate/{task_id}` -> `{"status", "run_id"}`; 404 `{"detail": "Task not found"}` for unknown ids.
- `GET /translation-result/{run_id}` -> `{"texts": [str]}` in input order, each text translated as
  `"[<target primary subtag>] <text>"`; 404 `{"detail": "Run not found"}` unless a task with that run id succeeded.

Progression (one step every `step_s` seconds): `PENDING` with `run_id` null for steps 0-2, then at step 3 the task
ends. It ends in `SUCCESS` with a fresh integer `run_id`, unless one of the texts contains a failure marker:
`FAIL_ERROR` -> `ERROR`, `FAIL_TIMEOUT` -> `TIMEOUT`, `FAIL_PAYMENT` -> `PAYMENT_REQUIRED` (checked in that order;
`run_id` stays null). A task forced to `SUCCESS` through the control API without a `run_id` gets one when it is
next read, as the vendor always returns a `run_id` with `SUCCESS`.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

from aiohttp import web

from gateway.sim.base import SimJob, Simulator

#: (id, language, short_name, also a source language)
LANGUAGES: tuple[tuple[int, str, str, bool], ...] = (
    (1, "English (United States)", "en-us", True),
    (2, "English (United Kingdom)", "en-gb", True),
    (3, "English (Australia)", "en-au", False),
    (31, "German (Germany)", "de-de", True),
    (54, "Spanish (Spain)", "es-es", True),
    (55, "Spanish (Mexico)", "es-mx", True),
    (76, "French (France)", "fr-fr", True),
    (77, "French (Canada)", "fr-ca", False),
    (88, "Italian (Italy)", "it-it", True),
    (96, "Japanese (Japan)", "ja-jp", True),
    (100, "Korean (South Korea)", "ko-kr", True),
    (111, "Dutch (Netherlands)", "nl-nl", True),
    (112, "Polish (Poland)", "pl-pl", True),
    (113, "Portuguese (Brazil)", "pt-br", True),
    (114, "Portuguese (Portugal)", "pt-pt", False),
    (120, "Russian (Russia)", "ru-ru", True),
    (130, "Swedish (Sweden)", "sv-se", True),
    (139, "Chinese (Simplified, China)", "zh-cn", True),
    (145, "Arabic (Saudi Arabia)", "ar-sa", False),
    (150, "Hindi (India)", "hi-in", False),
    (160, "Turkish (Turkey)", "tr-tr", True),
)

SOURCE_LANGUAGES = [{"id": i, "language": name, "short_name": short} for i, name, short, src in LANGUAGES if src]
TARGET_LANGUAGES = [{"id": i, "language": name, "short_name": short} for i, name, short, _ in LANGUAGES]

#: a text containing the marker ends its task in that status (checked in this order)
FAILURE_MARKERS: tuple[tuple[str, str], ...] = (
    ("FAIL_ERROR", "ERROR"),
    ("FAIL_TIMEOUT", "TIMEOUT"),
    ("FAIL_PAYMENT", "PAYMENT_REQUIRED"),
)
#: the step at which a task stops being PENDING
FINISH_STEP = 3

_FORMALITY = (1, 2)
_GENDER = (0, 1, 2, 9)


class CambSimulator(Simulator):
    """CAMB.AI's `/translate` family of endpoints, with the shared `__sim__` control API."""

    prefix: ClassVar[str] = "/camb/apis"

    def __init__(self, step_s: float = 1.0, **kw: Any) -> None:
        super().__init__(step_s, **kw)
        self._run_ids = itertools.count(90001)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/source-languages", self._source_languages),
            web.get("/target-languages", self._target_languages),
            web.post("/translate", self._create),
            web.get("/translate/{task_id}", self._status),
            web.get("/translation-result/{run_id}", self._result),
        ]

    def check_auth(self, request: web.Request) -> bool:
        return self.key_ok(request.headers.get("x-api-key"))

    def unauthorized(self) -> web.Response:
        return web.json_response({"detail": "Invalid or missing API key"}, status=401)

    def step(self, job: SimJob, n: int) -> None:
        if n != FINISH_STEP:
            return
        job.view["status"] = job.private["outcome"]
        if job.view["status"] == "SUCCESS":
            job.view["run_id"] = next(self._run_ids)

    # -- handlers -------------------------------------------------------------------------------
    async def _source_languages(self, request: web.Request) -> web.Response:
        return web.json_response(SOURCE_LANGUAGES)

    async def _target_languages(self, request: web.Request) -> web.Response:
        return web.json_response(TARGET_LANGUAGES)

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _unprocessable([_err(["body"], "JSON decode error", "json_invalid")])
        errors = validate_translate_body(body)
        if errors:
            return _unprocessable(errors)
        texts: list[str] = body["texts"]
        outcome = next((status for marker, status in FAILURE_MARKERS if any(marker in t for t in texts)), "SUCCESS")
        target = next(item["short_name"] for item in TARGET_LANGUAGES if item["id"] == body["target_language"])
        job = self.new_job({"status": "PENDING", "run_id": None}, texts=list(texts), target=target, outcome=outcome)
        return web.json_response({"task_id": job.id})

    async def _status(self, request: web.Request) -> web.Response:
        job = self.get_job(request.match_info["task_id"])
        if job is None:
            return web.json_response({"detail": "Task not found"}, status=404)
        if job.view.get("status") == "SUCCESS" and job.view.get("run_id") is None:
            job.view["run_id"] = next(self._run_ids)
        return web.json_response(job.view)

    async def _result(self, request: web.Request) -> web.Response:
        run_id = request.match_info["run_id"]
        for job in list(self.jobs.values()):
            self.advance(job)
            view = job.view
            if view.get("status") == "SUCCESS" and view.get("run_id") is not None and str(view["run_id"]) == run_id:
                tag = job.private["target"].split("-")[0]
                return web.json_response({"texts": [f"[{tag}] {text}" for text in job.private["texts"]]})
        return web.json_response({"detail": "Run not found"}, status=404)


def validate_translate_body(body: Any) -> list[dict[str, Any]]:
    """FastAPI-shaped validation errors for a `POST /translate` body; empty when it is acceptable."""
    if not isinstance(body, dict):
        return [_err(["body"], "Input should be a valid dictionary or object to extract fields from", "dict_type")]
    errors: list[dict[str, Any]] = []
    for field, table in (("source_language", SOURCE_LANGUAGES), ("target_language", TARGET_LANGUAGES)):
        if field not in body:
            errors.append(_err(["body", field], "Field required", "missing"))
        elif not _is_int(body[field]):
            errors.append(_err(["body", field], "Input should be a valid integer", "int_type"))
        elif not any(item["id"] == body[field] for item in table):
            msg = f"Value error, unknown {field.split('_')[0]} language id {body[field]}"
            errors.append(_err(["body", field], msg, "value_error"))
    texts = body.get("texts")
    if "texts" not in body:
        errors.append(_err(["body", "texts"], "Field required", "missing"))
    elif not isinstance(texts, list):
        errors.append(_err(["body", "texts"], "Input should be a valid list", "list_type"))
    elif not texts:
        errors.append(_err(["body", "texts"], "List should have at least 1 item after validation, not 0", "too_short"))
    else:
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                errors.append(_err(["body", "texts", i], "Input should be a valid string", "string_type"))
    if body.get("formality") is not None and (not _is_int(body["formality"]) or body["formality"] not in _FORMALITY):
        errors.append(_err(["body", "formality"], "Input should be 1 or 2", "enum"))
    if body.get("gender") is not None and (not _is_int(body["gender"]) or body["gender"] not in _GENDER):
        errors.append(_err(["body", "gender"], "Input should be 0, 1, 2 or 9", "enum"))
    if body.get("age") is not None and not _is_int(body["age"]):
        errors.append(_err(["body", "age"], "Input should be a valid integer", "int_type"))
    return errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _err(loc: list[str | int], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def _unprocessable(errors: list[dict[str, Any]]) -> web.Response:
    return web.json_response({"detail": errors}, status=422)
