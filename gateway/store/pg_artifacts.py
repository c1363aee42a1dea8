"""Artifacts of the PostgreSQL store, kept in the database so that every replica can serve them without a shared
filesystem: the bytes as rows of at most CHUNK bytes (`artifact_chunks`), streamed in and out (never whole in
memory), under a generation number so that a replacement or a failed download never mixes two files. Each replica
keeps a local cache file per generation (`<state_dir>/artifacts`), written while saving or on the first read, which
the API streams from; the cache can be deleted at any time."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator

from gateway.store.artifacts import ArtifactFiles, file_name
from gateway.store.pg_db import PgDatabase
from gateway.store.records import StoredArtifact

#: bytes per stored row
CHUNK = 256 * 1024
#: rows fetched per round trip when reading an artifact back (bounds memory: CHUNK * READ_ROWS)
READ_ROWS = 4


def cache_name(job_id: str, generation: int) -> str:
    return f"{file_name(job_id)[:-4]}-{generation}.bin"


async def save_artifact(
    db: PgDatabase,
    files: ArtifactFiles,
    job_id: str,
    content_type: str,
    filename: str | None,
    chunks: AsyncIterator[bytes],
) -> StoredArtifact:
    """Stream `chunks` into the database (and this replica's cache), then make it the job's artifact."""
    generation = int(await db.fetchval("SELECT nextval('artifact_generations')"))
    digest = hashlib.sha256()
    seq = 0

    async def store(block: bytes) -> None:
        nonlocal seq
        await db.execute(
            "INSERT INTO artifact_chunks (job_id, generation, seq, data) VALUES ($1, $2, $3, $4)",
            job_id,
            generation,
            seq,
            block,
        )
        seq += 1

    async def tee() -> AsyncIterator[bytes]:
        buffer = bytearray()
        async for chunk in chunks:
            digest.update(chunk)
            buffer += chunk
            while len(buffer) >= CHUNK:
                await store(bytes(buffer[:CHUNK]))
                del buffer[:CHUNK]
            yield chunk
        if buffer or seq == 0:
            await store(bytes(buffer))

    try:
        name, size = await files.write(job_id, tee(), name=cache_name(job_id, generation))
        async with db.tx() as tx:
            await tx.execute(
                "INSERT INTO artifacts (job_id, content_type, filename, size, generation, sha256, saved_us) "
                "VALUES ($1, $2, $3, $4, $5, $6, gw_now_us()) ON CONFLICT (job_id) DO UPDATE SET "
                "content_type = excluded.content_type, filename = excluded.filename, size = excluded.size, "
                "generation = excluded.generation, sha256 = excluded.sha256, saved_us = excluded.saved_us",
                job_id,
                content_type,
                filename,
                size,
                generation,
                digest.hexdigest(),
            )
            await tx.execute("DELETE FROM artifact_chunks WHERE job_id = $1 AND generation <> $2", job_id, generation)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(
                db.execute("DELETE FROM artifact_chunks WHERE job_id = $1 AND generation = $2", job_id, generation)
            )
        raise
    return StoredArtifact(
        job_id=job_id, content_type=content_type, filename=filename, size=size, path=files.directory / name
    )


async def load_artifact(db: PgDatabase, files: ArtifactFiles, job_id: str) -> StoredArtifact | None:
    """The job's artifact, served from this replica's cache (filled from the database when missing)."""
    row = await db.fetchrow("SELECT content_type, filename, size, generation FROM artifacts WHERE job_id = $1", job_id)
    if row is None:
        return None
    name = cache_name(job_id, row["generation"])
    path = files.directory / name
    if not (await asyncio.to_thread(path.is_file)) or (await asyncio.to_thread(path.stat)).st_size != row["size"]:
        await files.write(job_id, _read_chunks(db, job_id, row["generation"]), name=name)
    return StoredArtifact(
        job_id=job_id, content_type=row["content_type"], filename=row["filename"], size=row["size"], path=path
    )


async def _read_chunks(db: PgDatabase, job_id: str, generation: int) -> AsyncIterator[bytes]:
    seq = 0
    while True:
        rows = await db.fetch(
            "SELECT seq, data FROM artifact_chunks WHERE job_id = $1 AND generation = $2 AND seq >= $3 "
            "ORDER BY seq LIMIT $4",
            job_id,
            generation,
            seq,
            READ_ROWS,
        )
        for row in rows:
            yield bytes(row["data"])
        if len(rows) < READ_ROWS:
            return
        seq = rows[-1]["seq"] + 1
