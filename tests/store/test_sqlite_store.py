"""The embedded SQLite store's own behaviour (the shared contract is test_store_contract.py): the WAL survives a
SIGKILL, the schema version, URLs and file paths, the in-memory database."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from store_records import job

from gateway.states import State
from gateway.store import StoreError, open_store
from gateway.store.sqlite import SqliteStore
from gateway.store.sqlite_schema import MIGRATIONS, SCHEMA_VERSION

REPO = Path(__file__).resolve().parents[2]


_KILLED_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from gateway.states import CanonicalStatus, State
    from gateway.store import JobRecord, open_store

    async def main():
        store = open_store(sys.argv[1], state_dir=Path(sys.argv[2]))
        await store.open()
        now = datetime.now(UTC)
        record = JobRecord(id="job_k", tenant="t1", provider="camb", status=CanonicalStatus(state=State.QUEUED),
                           created_at=now, updated_at=now, webhook_url="https://h.example/")
        await store.create_job(record)
        await store.record_status("job_k", CanonicalStatus(state=State.RUNNING, progress=42), checked_at=now)
        os.kill(os.getpid(), signal.SIGKILL)

    asyncio.run(main())
    """
)


async def test_a_transition_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_WRITER, str(db), str(tmp_path), cwd=REPO, stderr=subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    # the commit lives only in the WAL: the killed process never checkpointed or closed
    assert (tmp_path / "gw.db-wal").stat().st_size > 0
    async with open_store(str(db), state_dir=tmp_path) as s:
        record = await s.get_job("job_k")
        assert record is not None and record.version == 2 and record.status.progress == 42
        assert [t.state for t in await s.transitions("job_k")] == [State.QUEUED, State.RUNNING]
        assert [e.id for e in await s.due_events(datetime.now(UTC))] == ["evt_job_k_1"]  # then _2, in order
        assert await s.pending_event_count() == 2
        assert [j.id for j in await s.non_terminal_jobs()] == ["job_k"]


# schema, URLs


async def test_schema_version_is_recorded_once(tmp_path: Path) -> None:
    db = tmp_path / "gw.db"
    for _ in range(2):
        async with open_store(str(db), state_dir=tmp_path) as s:
            assert await s.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    newer = open_store(str(db), state_dir=tmp_path)
    with pytest.raises(StoreError, match="newer"):
        await newer.open()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://{tmp}/abs/x.db", "{tmp}/abs/x.db"),
        ("sqlite://rel/x.db", "{state}/rel/x.db"),
        ("sqlite://", "{state}/gateway.db"),
        ("sqlite://:memory:", ":memory:"),
        ("SQLITE://{tmp}/y.db?synchronous=full", "{tmp}/y.db"),
        ("{tmp}/bare.db", "{tmp}/bare.db"),
        ("bare.db", "{state}/bare.db"),
    ],
)
def test_open_store_urls(tmp_path: Path, url: str, expected: str) -> None:
    state = tmp_path / "state"
    s = open_store(url.format(tmp=tmp_path), state_dir=state)
    assert isinstance(s, SqliteStore)
    assert s.path == expected.format(tmp=tmp_path, state=state)
    assert s.db.synchronous == ("full" if "synchronous=full" in url else "normal")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://localhost:6379/0", "'redis'"),
        ("", "empty"),
        ("sqlite:///x.db?journal=off", "journal"),
        ("sqlite:///x.db?synchronous=off", "synchronous"),
    ],
)
def test_open_store_refuses_bad_urls(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_store(url, state_dir=tmp_path)


async def test_memory_store_works(tmp_path: Path) -> None:
    async with open_store("sqlite://:memory:", state_dir=tmp_path) as s:
        await s.create_job(job("job_a"))
        assert (await s.get_job("job_a")).id == "job_a"
