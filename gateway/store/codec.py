"""Backend-neutral encodings of the store: aware datetimes as UTC microseconds, compact JSON, and the opaque
cursors of `list_jobs` (every backend orders a tenant's jobs by (created, id) and pages with the same cursor)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.store.records import to_utc

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
MAX_CURSOR_LEN = 512


def to_us(value: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime."""
    return (to_utc(value) - EPOCH) // _US


def from_us(value: int) -> datetime:
    return EPOCH + value * _US


def from_us_or_none(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def now_us() -> int:
    return to_us(datetime.now(UTC))


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_cursor(created_us: int, job_id: str) -> str:
    """The opaque cursor of a page that ends at (created_us, job_id)."""
    return base64.urlsafe_b64encode(dumps([created_us, job_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """(created_us, job_id) of a cursor made by `encode_cursor`; ValueError for anything else."""
    try:
        if not cursor or len(cursor) > MAX_CURSOR_LEN:
            raise ValueError
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        created_us, job_id = json.loads(raw.decode())
        if type(created_us) is not int or not isinstance(job_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed cursor") from None
    return created_us, job_id


def event_id(job_id: str, version: int) -> str:
    """The id of the webhook event of one version of a job (the same on every try)."""
    return f"evt_{job_id}_{version}"
