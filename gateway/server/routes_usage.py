"""The tenant's usage ledger, totalled (contract section 4.2): `GET /v1/usage`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.server.api import Answer, Api, Param, Params
from gateway.server.common import json_response
from gateway.server.keys import GATEWAY, STORE, TENANT
from gateway.server.problems import validation_problem
from gateway.server.usage_schemas import UsageReport
from gateway.usage import GroupBy, report

api = Api()

#: the period a report covers when `from` is not given (ending at `to`)
DEFAULT_SPAN = timedelta(days=30)
#: the longest period one report covers
MAX_SPAN = timedelta(days=366)
_WHEN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]{2,15}(Z|[+-][0-9]{2}:?[0-9]{2}))?"
WHEN_HELP = "a UTC day (YYYY-MM-DD, from its midnight) or an RFC 3339 date-time with its offset"


def _when(params: Params, name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise validation_problem([{"loc": ["query", name], "msg": f"must be {WHEN_HELP}"}]) from None
    if value.tzinfo is None:  # a bare day: its UTC midnight (a time without an offset cannot pass the pattern)
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@api.operation(
    "GET",
    "/v1/usage",
    summary="The tenant's usage: what each vendor reported, how jobs ended and how long they took",
    params=(
        Param("from", "query", description=f"start of the period (default: 30 days before `to`): {WHEN_HELP}",
              max_length=40, pattern=_WHEN),
        Param("to", "query", description=f"end of the period, excluded (default: now): {WHEN_HELP}",
              max_length=40, pattern=_WHEN),
        Param("group_by", "query", description="how to group the attempts (default: provider)", enum=tuple(GroupBy)),
    ),
    answers=(Answer(200, "OK", UsageReport),),
)  # fmt: skip
async def usage(request: web.Request, params: Params) -> web.Response:
    gw = request.app[GATEWAY]
    tenant = request[TENANT]
    now = gw.watcher.clock.now()
    until = _when(params, "to") or now
    since = _when(params, "from") or until - DEFAULT_SPAN
    if since >= until:
        raise validation_problem([{"loc": ["query", "from"], "msg": "must be before `to`"}])
    if until - since > MAX_SPAN:
        raise validation_problem([{"loc": ["query", "from"], "msg": "the period must be at most 366 days"}])
    entries = await request.app[STORE].usage(tenant, since=since, until=until)
    body = report(entries, GroupBy(params.get("group_by", GroupBy.PROVIDER)), since, until)
    body["budget"] = await gw.budgets.status(tenant, now)
    return json_response(body)
