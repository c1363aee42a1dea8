"""`wait()` against the demo gateway through a loopback proxy that breaks things: an event stream dropped in the
middle is resumed with Last-Event-ID and no version is missed; where no event stream can be had, long polls
take over; where neither works, polls at `poll_after_s`; and a deadline ends it with WaitTimeout."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from gateway.client import AsyncClient, WaitTimeout
from gateway.client.waiting import Follower, Mode
from gateway.models import Job
from gateway.plugins import get_providers
from support.cases import load_case
from support.demo import Demo
from support.waiting import wait_until

DOC = get_providers()["doc_translator"].sim_prefix
PDF_INPUT = {
    "kind": "document",
    "source_language": "en",
    "target_language": "de",
    "filename": "a.pdf",
    "content_base64": "JVBERi0xLjQKaGVsbG8=",
}


class Proxy:
    """A loopback TCP proxy in front of the gateway. `drop_streams`: event-stream connections to cut right after
    their first event; while `blocked` is set, new event-stream requests are cut before any answer;
    `refuse_streams`: event-stream requests are answered 404 (a proxy that does not pass them)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drop_streams = 0
        self.refuse_streams = False
        self.refuse_long_polls = False
        self.blocked = asyncio.Event()
        self.cut = asyncio.Event()
        self.stream_requests = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0]
        stream = b"/events" in line
        if stream:
            self.stream_requests += 1
        if (stream and self.refuse_streams) or (self.refuse_long_polls and b"wait=" in line):
            writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        if stream and self.blocked.is_set():
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        # one request per connection keeps the accounting simple
        up_writer.write(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))

        async def upstream() -> None:
            while data := await reader.read(65536):
                up_writer.write(data)
            up_writer.close()

        async def downstream() -> None:
            drop = stream and self.drop_streams > 0
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()
                if drop and b"event: job" in data:
                    self.drop_streams -= 1
                    self.cut.set()
                    return
            writer.write_eof()

        pump = asyncio.create_task(upstream())
        try:
            await downstream()
        finally:
            pump.cancel()
            writer.close()
            up_writer.close()


@contextlib.asynccontextmanager
async def proxied(demo: Demo) -> AsyncIterator[tuple[Proxy, AsyncClient]]:
    proxy = Proxy(demo.client.port)
    url = await proxy.start()
    client = AsyncClient(url, "demo-key")
    try:
        yield proxy, client
    finally:
        await client.close()
        await proxy.close()


async def _vendor(demo: Demo, job: Job, patch: dict) -> None:
    await demo.sim(DOC, f"/__sim__/jobs/{job.vendor_ref['job_id']}/state", patch)


async def test_a_dropped_stream_is_resumed_without_missing_a_version(demo) -> None:
    async with proxied(demo) as (proxy, client):
        proxy.drop_streams = 1
        job = await client.submit(PDF_INPUT, provider="doc_translator")
        seen: list[int] = []
        waiting = asyncio.create_task(client.wait(job.id, timeout=30, on_update=lambda j: seen.append(j.version)))
        await demo.wait_for(job.id, lambda j: j["version"] >= 2)  # the first poll: running
        await asyncio.wait_for(proxy.cut.wait(), 10)  # the stream carried it, then broke
        proxy.blocked.set()  # and stays away while the job moves on
        for progress in (30, 60):
            await _vendor(demo, job, {"status": "processing", "progress": progress})
            await demo.wait_for(job.id, lambda j, p=progress: j["progress"] == p)
        await _vendor(demo, job, load_case("doc_translator").finished_patch)
        final = await demo.wait_for(job.id, lambda j: j["terminal"])
        await wait_until(lambda: proxy.stream_requests >= 2, what="a refused reconnect")
        proxy.blocked.clear()
        done = await asyncio.wait_for(waiting, 20)
    assert done.state == "succeeded" and done.version == final["version"]
    assert seen == list(range(1, final["version"] + 1)), "every version, once, in order"
    assert proxy.stream_requests >= 3  # the cut stream, refused reconnects, the resumed one


@pytest.mark.parametrize(
    ("refuse_long_polls", "mode"), [(False, Mode.LONG_POLL), (True, Mode.POLL)], ids=["long-poll", "poll"]
)
async def test_without_streams_wait_falls_back(demo, refuse_long_polls, mode) -> None:
    """No event stream: long polls follow the job; no long polls either: polls at the job's poll_after_s."""
    async with proxied(demo) as (proxy, client):
        proxy.refuse_streams = True
        proxy.refuse_long_polls = refuse_long_polls
        job = await client.submit(PDF_INPUT, provider="doc_translator")
        follower = Follower(client, job.id, timeout=30, on_update=None)
        waiting = asyncio.create_task(follower.run())
        await demo.wait_for(job.id, lambda j: j["version"] >= 2)
        await _vendor(demo, job, load_case("doc_translator").finished_patch)
        done = await asyncio.wait_for(waiting, 20)
    assert done.state == "succeeded" and follower.mode is mode


async def test_wait_gives_up_at_its_deadline_with_the_last_version(demo) -> None:
    async with AsyncClient(str(demo.client.make_url("")), "demo-key") as client:
        job = await client.submit(PDF_INPUT, provider="doc_translator")
        with pytest.raises(WaitTimeout) as caught:
            await client.wait(job.id, timeout=0.5)
    assert caught.value.job.id == job.id and not caught.value.job.terminal
