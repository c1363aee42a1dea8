"""The gateway's durable store (contract sections 1 and 3): open one with `open_store(url, state_dir=...)`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from gateway.store.base import (
    IdempotencyMismatch,
    JobExists,
    JobNotFound,
    LeaseLost,
    Store,
    StoreError,
    StoreUnavailable,
)
from gateway.store.pg import PostgresStore
from gateway.store.records import JobRecord, OutboxEvent, StoredArtifact, TransitionRecord
from gateway.store.sqlite import SqliteStore

__all__ = [
    "IdempotencyMismatch",
    "JobExists",
    "JobNotFound",
    "JobRecord",
    "LeaseLost",
    "OutboxEvent",
    "Store",
    "StoreError",
    "StoreUnavailable",
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


#: options of a postgresql:// URL that the gateway reads (any other query option is the driver's, e.g. sslmode)
POSTGRES_OPTIONS: dict[str, Callable[[str], Any]] = {"lease_s": float, "pool_min": int, "pool_max": int, "replica": str}


def _open_postgres(parts: SplitResult, state_dir: Path) -> Store:
    """`postgresql://user:password@host:port/database?lease_s=15&pool_max=10&replica=name` (several replicas
    may share it; artifacts are kept in the database, `state_dir/artifacts` is only a local cache)."""
    kwargs: dict[str, Any] = {}
    driver: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        convert = POSTGRES_OPTIONS.get(key)
        if convert is None:
            driver.append((key, value))
            continue
        try:
            kwargs[key] = convert(value)
        except ValueError:
            raise ValueError(f"postgresql store option {key}={value!r} is not a {convert.__name__}") from None
    if not parts.hostname and not parts.path.strip("/") and not driver:
        raise ValueError("a postgresql store URL names a host or a database, e.g. postgresql://gateway@db/gateway")
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(driver), ""))
    return PostgresStore(dsn, state_dir=state_dir, **kwargs)


#: store backends by URL scheme
BACKENDS: dict[str, Callable[[SplitResult, Path], Store]] = {
    "sqlite": _open_sqlite,
    "postgresql": _open_postgres,
    "postgres": _open_postgres,
}


def open_store(url: str, *, state_dir: Path) -> Store:
    """The store named by `url` (not yet opened: `await store.open()` or `async with`).

    `sqlite:///abs/path.db`, `sqlite://relative/path.db` or a bare path (relative paths are taken
    relative to `state_dir`); `sqlite://` alone is `state_dir/gateway.db`. Artifacts live in
    `state_dir/artifacts`. `postgresql://...` is the store several replicas share (see `_open_postgres`).
    Any other scheme raises ValueError naming it.
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
