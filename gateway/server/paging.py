"""What the paged job lists share: the `state` and `provider` filters, the `limit` and `cursor` query parameters,
and reading the page they ask for (a cursor this API did not give is a 422 naming `cursor`, never a 500)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.server.api import Param, Params
from gateway.server.problems import validation_problem
from gateway.states import State

T = TypeVar("T")

DEFAULT_LIMIT = 50
STATE = Param("state", "query", enum=tuple(State))
PROVIDER = Param("provider", "query", max_length=100)
LIMIT = Param("limit", "query", int, description="jobs per page (default 50)", minimum=1, maximum="max_page")
CURSOR = Param("cursor", "query", description="next_cursor of the previous page", max_length=512)


async def read_page(
    params: Params, read: Callable[..., Awaitable[T]], *args: Any, filters: tuple[Param, ...] = ()
) -> T:
    """`read(*args, <each filter>=, limit=, cursor=)` for the page the query asks for."""
    given = {param.name: params.get(param.name) for param in filters}
    limit, cursor = params.get(LIMIT.name, DEFAULT_LIMIT), params.get(CURSOR.name)
    try:
        return await read(*args, **given, limit=limit, cursor=cursor)
    except ValueError:
        raise validation_problem([{"loc": ["query", "cursor"], "msg": "not a cursor this API gave"}]) from None
