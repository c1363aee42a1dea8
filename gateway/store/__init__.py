"""The gateway's durable store (contract sections 1 and 3): open one with `open_store(url, state_dir=...)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from gateway.store.base import IdempotencyMismatch, JobExists, JobNotFound, Store, StoreError
from gateway.store.records import JobRecord, OutboxEvent, StoredArtifact, TransitionRecord
from gateway.store.sqlite import SqliteStore

__all__ = [
    "IdempotencyMismatch",
    "JobExists",
    "JobNotFound",
    "JobRecord",
    "OutboxEvent",
    "Store",
    "StoreError",
    "StoredArtifact",
    "TransitionRecord",
    "open_store",
]

#: the database file used when a store URL names no path (e.g. `sqlite://`)
DEFAULT_DB_NAME = "gateway.db"


def _db_path(raw: str, state_dir: Path) -> str:
    """A database path: `:memory:`, absolute, or relative to `state_dir` (empty: the default file there)."""
    if raw == ":memory:":
        return raw
    if not raw:
        return str(state_dir / DEFAULT_DB_NAME)
    path = Path(raw).expanduser()
    return str(path if path.is_absolute() else state_dir / path)


def _open_sqlite(parts: SplitResult, state_dir: Path) -> Store:
    """`sqlite:///abs/path.db`, `sqlite://relative/path.db`, `sqlite://:memory:`; option `?synchronous=full`."""
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    kwargs: dict[str, Any] = {}
    if "synchronous" in options:
        kwargs["synchronous"] = options.pop("synchronous")
    if options:
        raise ValueError(f"unknown sqlite store option(s): {', '.join(sorted(options))}")
    path = _db_path(unquote(parts.netloc + parts.path), state_dir)
    return SqliteStore(path, state_dir=state_dir, **kwargs)


#: store backends by URL scheme
BACKENDS: dict[str, Callable[[SplitResult, Path], Store]] = {
    "sqlite": _open_sqlite,
}


def open_store(url: str, *, state_dir: Path) -> Store:
    """The store named by `url` (not yet opened: `await store.open()` or `async with`).

    `sqlite:///abs/path.db`, `sqlite://relative/path.db` or a bare path (relative paths are taken
    relative to `state_dir`); `sqlite://` alone is `state_dir/gateway.db`. Artifacts live in
    `state_dir/artifacts`. Any other scheme raises ValueError naming it.
    """
    url = url.strip()
    if not url:
        raise ValueError("empty store URL")
    state_dir = Path(state_dir).expanduser()
    if "://" not in url:  # a bare file path (taken verbatim: no options, no URL escapes)
        return SqliteStore(_db_path(url, state_dir), state_dir=state_dir)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    backend = BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{name}://" for name in sorted(BACKENDS))
        raise ValueError(f"unsupported store URL scheme {scheme!r} (supported: {known} or a file path)")
    return backend(parts, state_dir)
