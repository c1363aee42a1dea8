"""A local imitation of the Datafold DMA v2 translation API (contract sections 5 and 6).

Routes (relative to the `/datafold` prefix):
- `POST /api/v1/dma/v2/projects/{project_id}/translate/jobs` with an ApiTranslateRequest -> ApiTranslateTask;
- `GET /api/v1/dma/v2/projects/{project_id}/translate/jobs/{job_id}` -> ApiTranslateTask.

Auth is `Authorization: Key <api key>`. Request errors have FastAPI's shapes: 422
`{"detail": [{"type", "loc", "msg", "input"}]}` for a bad path parameter or body, 404 `{"detail": "Not Found"}`.

A job goes `waiting` -> `processing` (models listed, not yet translated) -> `processing` (translations being
validated) -> `done`, one step per `step_s`. One model per asset path (two default assets when none are given);
an asset whose path contains "invalid" ends `invalid_translation` with a failure summary. With `fail_fast`, the
first invalid model fails the job and the models after it are never attempted.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from typing import Any

from aiohttp import web
from pydantic import TypeAdapter, ValidationError

from gateway.sim.base import SimJob, Simulator
from providers.datafold.models import FAILURE_REASONS, ApiTranslateRequest

JOBS = "/api/v1/dma/v2/projects/{project_id}/translate/jobs"
JOB = JOBS + "/{job_id}"

DEFAULT_ASSETS = ("models/staging/stg_orders.sql", "models/marts/customer_revenue.sql")

_INT = TypeAdapter(int)

_FAILURES: dict[str, dict[str, str]] = {
    "max_iterations": {
        "problem": "The translated query did not reproduce the source query's output within the iteration limit",
        "error_message": "Data diff after 10 iterations: 14 rows differ in column amount (rounding of DECIMAL(18,4))",
        "solution": "Raise max_iterations, or cast amount to NUMBER(18,4) before aggregating",
    },
    "tool_error": {
        "problem": "The validation query could not run on the target warehouse",
        "error_message": "SQL compilation error: Object 'ANALYTICS.{table}' does not exist or not authorized.",
        "solution": "Migrate the source table first and grant SELECT on it to the Datafold service user",
    },
    "resignation": {
        "problem": "The agent gave up: the source uses a construct with no direct Snowflake equivalent",
        "error_message": "Unsupported construct: CROSS APPLY dbo.fn_split_tags(t.tags) in FROM clause",
        "solution": "Rewrite the table-valued function as LATERAL FLATTEN(SPLIT(t.tags, ',')) or translate it by hand",
    },
}


def _identifier(path: str, index: int) -> str:
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    return name or f"model_{index + 1}"


def _source_sql(name: str, table: str) -> str:
    return (
        "SELECT TOP 1000\n"
        f"    t.id AS {name}_id,\n"
        "    CONVERT(DATE, t.created_at) AS created_date,\n"
        "    ISNULL(t.amount, 0) AS amount,\n"
        "    DATEADD(day, -30, GETDATE()) AS window_start\n"
        f"FROM dbo.{table} AS t WITH (NOLOCK)\n"
        "WHERE t.is_deleted = 0\n"
        "ORDER BY t.created_at DESC"
    )


def _target_sql(name: str, table: str) -> str:
    return (
        "SELECT\n"
        f"    t.id AS {name}_id,\n"
        "    TO_DATE(t.created_at) AS created_date,\n"
        "    COALESCE(t.amount, 0) AS amount,\n"
        "    DATEADD(day, -30, CURRENT_TIMESTAMP()) AS window_start\n"
        f"FROM analytics.{table} AS t\n"
        "WHERE t.is_deleted = FALSE\n"
        "ORDER BY t.created_at DESC\n"
        "LIMIT 1000"
    )


def _fastapi_errors(exc: ValidationError, prefix: list[str | int]) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI puts them in a 422 body."""
    errors = []
    for err in exc.errors(include_url=False, include_context=False):
        item: dict[str, Any] = {"type": err["type"], "loc": [*prefix, *err["loc"]], "msg": err["msg"]}
        try:
            json.dumps(err.get("input"))
            item["input"] = err.get("input")
        except (TypeError, ValueError):
            item["input"] = None
        errors.append(item)
    return errors


class DatafoldSimulator(Simulator):
    prefix = "/datafold"

    def routes(self) -> list[web.RouteDef]:
        return [web.post(JOBS, self._create), web.get(JOB, self._status)]

    def check_auth(self, request: web.Request) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        return scheme.lower() == "key" and self.key_ok(key)

    def unauthorized(self) -> web.Response:
        return web.json_response({"detail": "Not authenticated"}, status=401)

    # -- requests ---------------------------------------------------------------------------------
    @staticmethod
    def _project_id(request: web.Request, errors: list[dict[str, Any]]) -> int | None:
        raw = request.match_info["project_id"]
        try:
            return _INT.validate_python(raw)
        except ValidationError as exc:
            errors.extend(_fastapi_errors(exc, ["path", "project_id"]))
            return None

    @staticmethod
    def _invalid(errors: list[dict[str, Any]]) -> web.Response:
        return web.json_response({"detail": errors}, status=422)

    async def _create(self, request: web.Request) -> web.Response:
        errors: list[dict[str, Any]] = []
        project_id = self._project_id(request, errors)
        raw = await request.read()
        body: ApiTranslateRequest | None = None
        if not raw.strip():
            errors.append({"type": "missing", "loc": ["body"], "msg": "Field required", "input": None})
        else:
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                pos = getattr(exc, "pos", 0)
                errors.append({"type": "json_invalid", "loc": ["body", pos], "msg": "JSON decode error", "input": {}})
            else:
                try:
                    body = ApiTranslateRequest.model_validate(data)
                except ValidationError as exc:
                    errors.extend(_fastapi_errors(exc, ["body"]))
        if errors or project_id is None or body is None:
            return self._invalid(errors)
        job_id = str(uuid.uuid4())
        job = self.new_job(
            {"status": "waiting", "task_id": job_id, "translated_models": None},
            job_id=job_id,
            project_id=project_id,
            request=body,
        )
        return web.json_response(job.view)

    async def _status(self, request: web.Request) -> web.Response:
        errors: list[dict[str, Any]] = []
        project_id = self._project_id(request, errors)
        if project_id is None:
            return self._invalid(errors)
        job = self.get_job(request.match_info["job_id"])
        if job is None or job.private.get("project_id") != project_id:
            return self.not_found()
        return web.json_response(job.view)

    # -- progression ------------------------------------------------------------------------------
    def step(self, job: SimJob, n: int) -> None:
        request: ApiTranslateRequest = job.private["request"]
        models = self._models(job.private["project_id"], list(request.asset_paths or DEFAULT_ASSETS))
        if n == 1:
            job.view.update(status="processing", translated_models=[m["listed"] for m in models])
        elif n == 2:
            job.view.update(status="processing", translated_models=[m["pending"] for m in models])
        elif n == 3:
            final = [m["final"] for m in models]
            status = "done"
            if request.fail_fast:
                for i, model in enumerate(final):
                    if model["translation_status"] != "valid_translation":
                        status = "failed"
                        final = final[: i + 1] + [m["listed"] for m in models[i + 1 :]]
                        break
            job.view.update(status=status, translated_models=final)

    @staticmethod
    def _models(project_id: int, paths: list[str]) -> list[dict[str, dict[str, Any]]]:
        """Each asset's model as listed, while being validated, and finished."""
        out = []
        invalid_seen = 0
        for index, path in enumerate(paths):
            name = _identifier(path, index)
            table = name.removeprefix("stg_")
            base: dict[str, Any] = {
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"datafold:{project_id}:{path}")),
                "asset_name": name,
                "datadiff_id": None,
                "failure_summary": None,
                "source_filename": path,
                "source_sql": _source_sql(name, table),
                "target_sql": None,
                "translation_status": "no_translation_attempts",
            }
            pending = {**base, "translation_status": "validation_pending", "target_sql": _target_sql(name, table)}
            if "invalid" in path.lower():
                reason = FAILURE_REASONS[invalid_seen % len(FAILURE_REASONS)]
                invalid_seen += 1
                texts = {k: v.replace("{table}", table.upper()) for k, v in _FAILURES[reason].items()}
                final = {
                    **pending,
                    "translation_status": "invalid_translation",
                    "target_sql": None if reason == "resignation" else pending["target_sql"],
                    "failure_summary": {**texts, "reason": reason, "location": f"{path}:6"},
                }
            else:
                final = {
                    **pending,
                    "translation_status": "valid_translation",
                    "datadiff_id": 40000 + zlib.crc32(path.encode()) % 10000,
                }
            out.append({"listed": base, "pending": pending, "final": final})
        return out
