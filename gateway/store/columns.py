"""How a record is stored in a row, declared once per table and read by every backend: which column holds which
field and how its value is written (times as UTC microseconds, flags as integers, JSON as text) and read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from pydantic import BaseModel

from gateway.states import CanonicalStatus
from gateway.store.codec import dumps, from_us, from_us_or_none, to_us


class Row(Protocol):
    """A database row read by column name (sqlite3.Row, asyncpg.Record): both backends share these conversions."""

    def __getitem__(self, key: str, /) -> Any: ...


class Kind(NamedTuple):
    """How one column's value is written from a field, and read back into it."""

    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _to_us_or_none(value: Any) -> int | None:
    return None if value is None else to_us(value)


PLAIN = Kind(_same, _same)
TIME = Kind(to_us, from_us)
TIME_OR_NONE = Kind(_to_us_or_none, from_us_or_none)
FLAG = Kind(int, bool)
JSON = Kind(dumps, json.loads)
ENUM = Kind(lambda value: value.value, _same)
STATUS = Kind(lambda status: status.model_dump_json(), CanonicalStatus.model_validate_json)

R = TypeVar("R", bound=BaseModel)


def _spec(column: str | tuple[str, Kind] | tuple[str, str, Kind]) -> tuple[str, str, Kind]:
    if isinstance(column, str):
        return column, column, PLAIN
    if len(column) == 2:
        return column[0], column[0], column[1]
    return column


class Columns(Generic[R]):
    """The columns of one record type: a plain name is a column holding the field of that name as is, a
    (name, kind) pair one holding it in that kind, and a (column, field, kind) triple says where and how."""

    def __init__(self, model: type[R], *columns: str | tuple[str, Kind] | tuple[str, str, Kind]) -> None:
        self.model = model
        self.spec = tuple(_spec(c) for c in columns)
        self.names = tuple(column for column, _, _ in self.spec)
        #: the column list of a SELECT or INSERT, in declaration order
        self.sql = ", ".join(self.names)

    def values(self, record: R) -> tuple[Any, ...]:
        """The row of a record (in `names` order)."""
        return tuple(kind.encode(getattr(record, field)) for _, field, kind in self.spec)

    def from_row(self, row: Row) -> R:
        return self.model(**{field: kind.decode(row[column]) for column, field, kind in self.spec})
