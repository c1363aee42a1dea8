"""The Datafold DMA v2 provider: submit SQL translation jobs, poll them, read the translated models."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gateway.errors import InputError, VendorMalformed, VendorValidationError
from gateway.inputs import SubmitInput, parse_input
from gateway.models import Output, ResultParts
from gateway.provider import Capabilities, DemoSettings, Provider, ProviderConfig, vendor_given_id
from gateway.states import CanonicalStatus
from gateway.vendor_http import VendorConnection, path_segment
from providers.datafold.mapping import MAPPING, MAPPING_NOTES, has_translated_models, model_issues, translated_models
from providers.datafold.mapping import normalize as normalize_status
from providers.datafold.simulator import DatafoldSimulator

JOBS_PATH = "/api/v1/dma/v2/projects/{project_id}/translate/jobs"
JOB_PATH = JOBS_PATH + "/{job_id}"


class DatafoldConfig(ProviderConfig):
    """Datafold's config table: the common keys plus the default project."""

    #: the Datafold project a native input without `project_id` goes to
    project_id: int | None = Field(default=None, ge=1)


def _project_id(value: Any, loc: list[str | int]) -> int:
    """A Datafold project id: a positive integer (a string of digits is accepted and converted)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("project_id must be a positive integer", loc=loc)
    return value


def _input_loc(error: dict[str, Any]) -> dict[str, Any]:
    """A vendor 422 entry located in the caller's native input: `body.x` and `path.project_id` become `input.x`."""
    loc = list(error.get("loc") or [])
    if loc[:1] == ["input"] and len(loc) >= 2 and loc[1] in ("body", "path"):
        loc = ["input", *loc[2:]]
    return {**error, "loc": loc}


class DatafoldProvider(Provider):
    name = "datafold"
    display_name = "Datafold DMA v2"
    capabilities = Capabilities(
        submit=True, status=True, result=True, cancel=False, artifact=False, progress=False, input_kinds=["native"]
    )
    mapping = MAPPING
    mapping_notes = MAPPING_NOTES
    config_model = DatafoldConfig
    sim_prefix = "/datafold"
    #: the vendor answers errors as FastAPI does: `{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`
    error_fields = ("detail",)

    def demo_settings(self) -> DemoSettings:
        """The demo's jobs go to the simulator's project 1."""
        return DemoSettings(config={"project_id": 1})

    # -- pure ---------------------------------------------------------------------------------
    def normalize(self, body: Any) -> CanonicalStatus:
        return normalize_status(body)

    def auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"Authorization": f"Key {api_key}"} if api_key else {}

    def validate_ref(self, ref: Any) -> dict[str, Any]:
        """A vendor_ref is `{"project_id": int, "job_id": str}`; both are checked as they will go into a URL."""
        ref = super().validate_ref(ref)
        project_id = _project_id(ref.get("project_id"), ["vendor_ref", "project_id"])
        job_id = ref.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise InputError("job_id must be a non-empty string", loc=["vendor_ref", "job_id"])
        path_segment(job_id, name="job_id")
        return {"project_id": project_id, "job_id": job_id}

    def _job_path(self, ref: dict[str, Any]) -> str:
        ref = self.validate_ref(ref)
        return JOB_PATH.format(
            project_id=path_segment(ref["project_id"], name="project_id"),
            job_id=path_segment(ref["job_id"], name="job_id"),
        )

    # -- I/O ------------------------------------------------------------------------------------
    async def submit(self, conn: VendorConnection, input: SubmitInput) -> dict[str, Any]:
        """Start a translation job from a native input: an ApiTranslateRequest body plus `project_id`."""
        input = parse_input(input, kinds=self.capabilities.input_kinds)
        if not isinstance(input, dict):
            raise InputError(
                "datafold accepts only its native input (an ApiTranslateRequest body plus project_id)",
                loc=["input", "kind"],
            )
        body = dict(input)
        project_id = body.pop("project_id", None)
        if project_id is None:
            project_id = getattr(conn.settings, "project_id", None)
            if project_id is None:
                raise InputError(
                    "project_id is required: give it in the input or configure the provider's project_id",
                    loc=["input", "project_id"],
                )
        project_id = _project_id(project_id, ["input", "project_id"])
        path = JOBS_PATH.format(project_id=path_segment(project_id, name="project_id"))
        try:
            _, answer = await conn.request_json("POST", path, json_body=body)
        except VendorValidationError as exc:
            exc.errors = [_input_loc(err) for err in exc.errors]
            raise
        task_id = answer.get("task_id") if isinstance(answer, dict) else None
        if not isinstance(task_id, str) or not task_id:
            raise VendorMalformed("vendor answered the submit without a task_id", provider=self.name)
        problem = "vendor answered the submit with an unusable task_id"
        return {"project_id": project_id, "job_id": vendor_given_id(task_id, provider=self.name, problem=problem)}

    async def fetch_status(self, conn: VendorConnection, ref: dict[str, Any]) -> Any:
        _, body = await conn.request_json("GET", self._job_path(ref))
        return body

    async def fetch_result(self, conn: VendorConnection, ref: dict[str, Any], status_body: Any) -> ResultParts:
        """One output per translated model, read from the status body (fetched again when it has none)."""
        body = status_body
        if not has_translated_models(body):
            body = await self.fetch_status(conn, ref)
        outputs = [
            Output(
                name=model.asset_name,
                source=model.source_sql,
                target=model.target_sql,
                status=model.translation_status,
                quality=None,
            )
            for model in translated_models(body)
            if model is not None
        ]
        return ResultParts(
            outputs=outputs,
            issues=model_issues(body),
            vendor=body if isinstance(body, dict) else {},
            has_artifact=False,
        )

    # -- simulator ----------------------------------------------------------------------------------
    def simulator(self, step_s: float = 1.0) -> DatafoldSimulator:
        return DatafoldSimulator(step_s)
