"""What the multi-replica tests do through HTTP: submit, read, and ask the simulator who sent which request.
The processes themselves come from `gateway.testing.cluster`."""

from __future__ import annotations

from typing import Any

import aiohttp

from gateway.testing.cluster import AUTH, Cluster, Process, prefix


async def sim_requests(session: aiohttp.ClientSession, cluster: Cluster, provider: str) -> list[list[Any]]:
    """The simulator's request log for one provider: [unix time, method, path, host]."""
    assert cluster.sim is not None
    async with session.get(cluster.sim.url + prefix(provider) + "/__sim__/requests") as resp:
        return list((await resp.json())["requests"])


async def submit(session: aiohttp.ClientSession, replica: Process, provider: str, **extra: Any) -> dict[str, Any]:
    texts = ["Die Qualität unserer Produkte spricht für sich.", "Wir liefern pünktlich."]
    body = {
        "provider": provider,
        "input": {"kind": "text", "source_language": "de", "target_language": "en", "texts": texts},
        **extra,
    }
    if provider == "camb":
        body["input"].update(source_language="en-us", target_language="de-de", texts=["Hello"])
    async with session.post(replica.url + "/v1/jobs", json=body, headers=AUTH) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def get_json(session: aiohttp.ClientSession, url: str, **params: Any) -> tuple[int, Any]:
    async with session.get(url, headers=AUTH, params=params) as resp:
        return resp.status, await resp.json()
