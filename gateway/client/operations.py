"""Every HTTP operation the client calls, as the server declares it (method, path, parameters, answer model).

A test compares this table with the server's `/openapi.json` (which is built from the server's own
declarations), so the client cannot drift from the server: a new, renamed or changed operation fails it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from gateway.models import Job, Result
from gateway.server.schemas import (
    DeliveryLog,
    Health,
    JobList,
    OperatorJobDetail,
    OperatorJobList,
    ProviderHealthList,
    ProviderList,
    TransitionList,
    WebhookDelivery,
    WebhookDeliveryList,
)
from gateway.server.usage_schemas import UsageReport

JOB_ID = "job_id"


@dataclass(frozen=True)
class Op:
    """One operation: its OpenAPI operationId, method, path template, parameter names and answer model."""

    id: str
    method: str
    path: str
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    #: the model of the success answer, None for a stream, a file or text
    model: type[BaseModel] | None = None

    def url_path(self, **path_params: str) -> str:
        path = self.path
        for name, value in path_params.items():
            path = path.replace("{" + name + "}", value)
        return path

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


OPERATIONS: dict[str, Op] = {
    op.id: op
    for op in (
        Op("list_providers", "GET", "/v1/providers", model=ProviderList),
        Op("submit", "POST", "/v1/jobs", headers=("Idempotency-Key",), model=Job),
        Op("attach", "POST", "/v1/jobs/attach", model=Job),
        Op("list_jobs", "GET", "/v1/jobs", query=("state", "provider", "limit", "cursor"), model=JobList),
        Op("get_job", "GET", "/v1/jobs/{job_id}", query=("wait", "version"), headers=("If-None-Match",), model=Job),
        Op("cancel", "POST", "/v1/jobs/{job_id}/cancel", model=Job),
        Op("transitions", "GET", "/v1/jobs/{job_id}/transitions", model=TransitionList),
        Op("events", "GET", "/v1/jobs/{job_id}/events", headers=("Last-Event-ID",)),
        Op("result", "GET", "/v1/jobs/{job_id}/result", model=Result),
        Op("artifact", "GET", "/v1/jobs/{job_id}/artifact"),
        Op("usage", "GET", "/v1/usage", query=("from", "to", "group_by"), model=UsageReport),
        Op("job_deliveries", "GET", "/v1/jobs/{job_id}/deliveries", model=DeliveryLog),
        Op("retry_delivery", "POST", "/v1/deliveries/{event_id}/retry", model=WebhookDelivery),
        Op("replay_deliveries", "POST", "/v1/jobs/{job_id}/deliveries/replay", model=WebhookDeliveryList),
        Op(
            "tenant_events",
            "GET",
            "/v1/events",
            query=("last_event_id", "provider", "state"),
            headers=("Last-Event-ID",),
        ),
        Op("healthz", "GET", "/healthz", model=Health),
        Op("readyz", "GET", "/readyz", model=Health),
        Op("metrics", "GET", "/metrics"),
        Op("openapi", "GET", "/openapi.json"),
        Op(
            "operator_jobs",
            "GET",
            "/v1/operator/jobs",
            query=("tenant", "provider", "state", "limit", "cursor"),
            model=OperatorJobList,
        ),
        Op("operator_job", "GET", "/v1/operator/jobs/{job_id}", model=OperatorJobDetail),
        Op("operator_events", "GET", "/v1/operator/events"),
        Op("operator_providers", "GET", "/v1/operator/providers", model=ProviderHealthList),
    )
}

#: operations of the server that are pages for a browser, not API calls
NOT_FOR_CLIENTS = frozenset({"ui_index", "ui_asset"})
