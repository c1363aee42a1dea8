"""The tenant's event stream: every transition of every one of its jobs over one server-sent event stream,
resumable with Last-Event-ID across restarts (contract section 2)."""

from __future__ import annotations

import json

import aiohttp
from aiohttp import web

from gateway.jobs import Gateway
from gateway.render import job_at
from gateway.server.api import Answer, Api, Param, Params
from gateway.server.keys import GATEWAY, STORE, TENANT
from gateway.states import State
from gateway.store.base import Store

api = Api()

#: a comment line (or a position) sent on an idle stream this often, so proxies keep it open
KEEP_ALIVE_S = 15.0
#: events read from the store at once
BATCH = 200
#: the largest event id
MAX_SEQ = 2**62
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "description": "the event's position in the store's sequence (resume after it)"},
        "event": {"enum": ["job", "position"]},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": 'event "job": the Job at that version; event "position": {"last_event_id"}',
        },
    },
}
LAST_EVENT_ID = Param(
    "Last-Event-ID",
    "header",
    int,
    description="the id of the last event received: the stream resumes after it",
    minimum=0,
    maximum=MAX_SEQ,
)
LAST_EVENT_ID_QUERY = Param(
    "last_event_id",
    "query",
    int,
    description="the same as the Last-Event-ID header (for clients that cannot set it); 0 replays everything",
    minimum=0,
    maximum=MAX_SEQ,
)


@api.operation(
    "GET",
    "/v1/events",
    summary="Server-sent events of every transition of the tenant's jobs; resumable with Last-Event-ID",
    params=(
        LAST_EVENT_ID,
        LAST_EVENT_ID_QUERY,
        Param("provider", "query", max_length=100, description="only jobs of this provider"),
        Param("state", "query", enum=tuple(State), description="only transitions into this state"),
    ),
    answers=(Answer(200, "event stream", content_type="text/event-stream", schema=SSE_EVENT),),
)
async def tenant_events(request: web.Request, params: Params) -> web.StreamResponse:
    """Each transition as `id: <sequence>`, `event: job`, `data: <Job at that version>`, in order, without gaps or
    duplicates; without Last-Event-ID the stream starts at the present with a `position` event."""
    store = request.app[STORE]
    after = params.get(LAST_EVENT_ID.name, params.get(LAST_EVENT_ID_QUERY.name))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    stream = _Stream(response, request.app[GATEWAY], store, request[TENANT], params)
    try:
        await stream.run(after)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client went away: nothing to answer
    return response


class _Stream:
    def __init__(self, response: web.StreamResponse, gw: Gateway, store: Store, tenant: str, params: Params) -> None:
        self.response = response
        self.gw = gw
        self.store = store
        self.tenant = tenant
        self.provider: str | None = params.get("provider")
        self.state: str | None = params.get("state")
        #: the id the client holds (the last sent)
        self.sent = -1

    async def run(self, after: int | None) -> None:
        notifier = self.gw.watcher.notifier
        head = await self.store.last_event_seq()
        if after is None or after > head:  # a fresh start, or an id this store never gave: from the present
            after = head
            await self._position(after)
        self.sent = after
        changes = notifier.subscribe()  # before reading: a transition in between is not missed
        try:
            while not notifier.closing:
                after, full = await self._send_since(after)
                if full:
                    continue
                if not await changes.next(KEEP_ALIVE_S) and not notifier.closing:
                    if after > self.sent:  # filtered-out transitions moved the position: tell the client
                        await self._position(after)
                    else:
                        await self.response.write(b": keep-alive\n\n")
        finally:
            notifier.unsubscribe(changes)
        await self.response.write_eof()

    async def _send_since(self, after: int) -> tuple[int, bool]:
        """Send every matching transition after `after`; (the new position, whether a whole batch was read)."""
        head = await self.store.last_event_seq()
        events = await self.store.job_events(
            self.tenant, after=after, provider=self.provider, state=self.state, limit=BATCH
        )
        for event in events:
            data = json.dumps(self.gw.body(job_at(event.job, event.transition)), separators=(",", ":"))
            await self.response.write(f"id: {event.seq}\nevent: job\ndata: {data}\n\n".encode())
            self.sent = after = event.seq
        if len(events) == BATCH:
            return after, True
        # every transition up to `head` was committed before the read and examined by it
        return max(after, head), False

    async def _position(self, seq: int) -> None:
        data = json.dumps({"last_event_id": str(seq)})
        await self.response.write(f"id: {seq}\nevent: position\ndata: {data}\n\n".encode())
        self.sent = seq
