"""The `store` fixture: every contract test runs once per backend (SQLite file, PostgreSQL database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store, open_store

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/state/gw.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(store_url, state_dir=tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
