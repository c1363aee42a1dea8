"""A job's webhook delivery log, and sending events again: one event now, or a job's events from a version on
(contract section 2, docs/webhooks.md). Tenant-scoped: another tenant's job or event answers 404 like an unknown
one."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.server.api import BODY, Answer, Api, Param, Params
from gateway.server.common import JOB_ID, json_response, owned_job
from gateway.server.keys import DISPATCHER, STORE, TENANT
from gateway.server.problems import Problem, not_found, validation_problem
from gateway.server.schemas import DeliveryLog, ReplayRequest, WebhookDelivery, WebhookDeliveryList
from gateway.store.base import Store
from gateway.store.records import EventDeliveries, JobRecord, iso_z, iso_z_or_none

api = Api()

EVENT_ID = Param(
    "event_id",
    "path",
    description="a webhook event id (webhook-id) of a delivery log",
    required=True,
    pattern=r"evt_job_[0-9a-f]{24}_[0-9]{1,18}",
)


def delivery_body(entry: EventDeliveries) -> dict[str, Any]:
    """One event of the delivery log, as JSON-ready data."""
    event = entry.event
    return {
        "id": event.id,
        "version": event.version,
        "state": event.state,
        "created_at": iso_z_or_none(event.created_at),
        "next_attempt_at": iso_z(event.next_attempt_at) if event.state == "pending" else None,
        "delivered_at": iso_z_or_none(event.delivered_at),
        "failed_at": iso_z_or_none(event.failed_at),
        "failure": event.failure,
        "attempts": [
            {
                "number": a.number,
                "at": iso_z(a.at),
                "duration_ms": a.duration_ms,
                "status": a.status,
                "error": a.error,
                "message": a.message,
            }
            for a in entry.attempts
        ],
    }


async def delivery_log(store: Store, job: JobRecord) -> dict[str, Any]:
    """The job's delivery log (a DeliveryLog): its webhook URL, the endpoint's state, every event and try."""
    log = await store.job_deliveries(job.id)
    return {
        "webhook_url": job.webhook_url,
        "endpoint": await _endpoint(store, job),
        "data": [delivery_body(entry) for entry in log],
    }


async def _endpoint(store: Store, job: JobRecord) -> dict[str, Any] | None:
    if job.webhook_url is None:
        return None
    disabled = await store.disabled_endpoint(job.tenant, job.webhook_url)
    return {
        "url": job.webhook_url,
        "disabled": disabled is not None,
        "disabled_at": None if disabled is None else iso_z(disabled.disabled_at),
        "reason": None if disabled is None else disabled.reason,
    }


@api.operation(
    "GET",
    "/v1/jobs/{job_id}/deliveries",
    summary="The job's webhook delivery log: each event, every try, the next try or the final outcome",
    params=(JOB_ID,),
    answers=(Answer(200, "OK", DeliveryLog),),
)
async def job_deliveries(request: web.Request, params: Params) -> web.Response:
    job = await owned_job(request)
    return json_response(await delivery_log(request.app[STORE], job))


@api.operation(
    "POST",
    "/v1/deliveries/{event_id}/retry",
    summary="Send one webhook event again now (also a delivered or dead-lettered one); re-enables its endpoint",
    params=(EVENT_ID,),
    answers=(Answer(202, "queued: the event is due now, with a fresh retry schedule", WebhookDelivery),),
)
async def retry_delivery(request: web.Request, params: Params) -> web.Response:
    store = request.app[STORE]
    dispatcher = request.app[DISPATCHER]
    event = await store.retry_event(params["event_id"], tenant=request[TENANT], now=dispatcher.clock.now())
    if event is None:
        raise not_found("webhook event")
    dispatcher.wake()
    log = await store.job_deliveries(event.job_id)
    entry = next((e for e in log if e.event.id == event.id), EventDeliveries(event=event))
    return json_response(delivery_body(entry), status=202)


@api.operation(
    "POST",
    "/v1/jobs/{job_id}/deliveries/replay",
    summary="Send the job's webhook events again from a version on, in order; re-enables its endpoint",
    params=(JOB_ID,),
    body=ReplayRequest,
    answers=(Answer(202, "queued, by version", WebhookDeliveryList),),
    problems={409: "no_webhook"},
)
async def replay_deliveries(request: web.Request, params: Params) -> web.Response:
    store = request.app[STORE]
    dispatcher = request.app[DISPATCHER]
    body: ReplayRequest = params[BODY]
    job = await owned_job(request)
    if job.webhook_url is None:
        raise Problem(409, "no_webhook", "the job was submitted without a webhook_url: it has no events to send")
    if body.from_version > job.version:
        msg = f"must be at most the job's version ({job.version})"
        raise validation_problem([{"loc": ["body", "from_version"], "msg": msg}])
    events = await store.replay_events(job.id, from_version=body.from_version, now=dispatcher.clock.now())
    dispatcher.wake()
    replayed = {event.id for event in events}
    log = [entry for entry in await store.job_deliveries(job.id) if entry.event.id in replayed]
    return json_response({"data": [delivery_body(entry) for entry in log]}, status=202)
