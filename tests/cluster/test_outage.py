"""The database goes away under a running replica: requests answer 503 `unavailable` (never 500), readiness says
so, nothing is lost, and the replica recovers by itself when the database is back (same address)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cluster_kit import get_json, submit

from gateway.testing.cluster import AUTH, Cluster
from gateway.testing.postgres import PostgresServer


@pytest.fixture
def own_server(postgres_server: PostgresServer) -> Iterator[PostgresServer]:
    """A private server of this test's own (it is stopped and restarted; the session's server is not)."""
    server = PostgresServer.start_in(bin_dir=postgres_server.bin_dir)
    try:
        yield server
    finally:
        server.destroy()


async def test_a_replica_rides_out_a_database_outage(own_server: PostgresServer, tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, own_server.create_database(), step_s=2.0, lease_s=3.0)
    try:
        await cluster.start_simulator()
        replica = await cluster.start_replica("a")
        async with aiohttp.ClientSession() as http:
            job = await submit(http, replica, "segment_qa")
            on_a = f"{replica.url}/v1/jobs/{job['id']}"
            await get_json(http, on_a, wait=20, version=1)
            await asyncio.to_thread(own_server.stop)
            down_at = time.monotonic()
            async with http.get(replica.url + "/v1/jobs", headers=AUTH) as resp:
                problem = await resp.json()
                assert resp.status == 503 and problem["code"] == "unavailable", problem
                assert resp.headers["Content-Type"].startswith("application/problem+json")
            async with http.get(replica.url + "/readyz") as resp:
                assert resp.status == 503
            await asyncio.sleep(max(0.0, 4.0 - (time.monotonic() - down_at)))  # longer than a lease
            await asyncio.to_thread(own_server.start)
            deadline = time.monotonic() + 30
            while True:  # recovers by itself: no restart of the replica
                async with http.get(replica.url + "/readyz") as resp:
                    if resp.status == 200:
                        ready = await resp.json()
                        break
                assert time.monotonic() < deadline, "the replica never became ready again"
                await asyncio.sleep(0.2)
            assert ready["leases"]["ok"] and ready["leases"]["replicas"] == 1
            while True:  # the job is watched again and finishes, with no version lost
                status, current = await get_json(http, on_a)
                if status == 200 and current["state"] in {"succeeded", "completed_with_issues", "failed"}:
                    break
                async with http.get(replica.url + "/readyz") as resp:
                    ready = await resp.json()
                assert time.monotonic() < deadline + 30, (current, ready)
                await asyncio.sleep(0.3)
            _, history = await get_json(http, on_a + "/transitions")
            assert [t["version"] for t in history["data"]] == list(range(1, current["version"] + 1))
            assert replica.alive()
    finally:
        cluster.stop()
