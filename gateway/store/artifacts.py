"""Artifact files kept on disk for any store backend: streamed to a temporary file (never whole in memory),
made durable, then renamed into place, under a name no job id can turn into a path outside the directory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

log = logging.getLogger("gateway.store")

#: artifact bytes gathered before one write to disk (bounds memory, saves thread hops for tiny chunks)
WRITE_BUFFER = 256 * 1024


def file_name(job_id: str) -> str:
    """A file name for a job's artifact that no job id can turn into a path outside the artifacts dir."""
    return hashlib.sha256(job_id.encode()).hexdigest() + ".bin"


class ArtifactFiles:
    """The artifacts directory of a store."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def ensure(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    async def write(self, job_id: str, chunks: AsyncIterator[bytes], *, name: str | None = None) -> tuple[str, int]:
        """Stream `chunks` into the job's file (`name`, default `file_name(job_id)`); (file name, size).
        A failure leaves no partial file behind."""
        name = name or file_name(job_id)
        fd, tmp = await asyncio.to_thread(tempfile.mkstemp, dir=self.directory, prefix=f".{name}.", suffix=".part")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                buffer = bytearray()
                async for chunk in chunks:
                    buffer += chunk
                    size += len(chunk)
                    if len(buffer) >= WRITE_BUFFER:
                        await asyncio.to_thread(out.write, bytes(buffer))
                        buffer.clear()
                await asyncio.to_thread(_finish_file, out, bytes(buffer))
            await asyncio.to_thread(os.replace, tmp, self.directory / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return name, size

    def existing(self, job_id: str, name: str) -> Path | None:
        """The path of a stored artifact file, or None (logged) when the file has gone missing."""
        path = self.directory / name
        if not path.is_file():
            log.error("job %s: artifact file %s is missing", job_id, path)
            return None
        return path


def _finish_file(out: IO[bytes], tail: bytes) -> None:
    """Write the last bytes and make the file durable before it is renamed into place."""
    if tail:
        out.write(tail)
    out.flush()
    os.fsync(out.fileno())
