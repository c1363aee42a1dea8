"""GET /v1/events: every transition of the tenant's jobs on one server-sent event stream, resumable with
Last-Event-ID across a gateway restart without a gap or a duplicate, filtered by provider and state."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.plugins import get_providers
from gateway.server import routes_events
from support.cases import load_case
from support.demo import KEY_A, KEY_B, Demo

CAMB = get_providers()["camb"].sim_prefix


class Sse:
    """A server-sent event stream read message by message."""

    def __init__(self, resp: Any) -> None:
        self.resp = resp

    async def next(self, within: float = 10.0) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        while True:
            line = await asyncio.wait_for(self.resp.content.readline(), within)
            if not line:
                raise EOFError("the stream ended")
            text = line.decode().rstrip("\n")
            if not text:
                if fields:
                    if "data" in fields:
                        fields["data"] = json.loads(fields["data"])
                    return fields
                continue
            if text.startswith(":"):
                continue
            name, _, value = text.partition(": ")
            fields[name] = value

    async def jobs_until(self, done, within: float = 10.0) -> list[dict[str, Any]]:
        """Job events until `done(received)` holds."""
        received: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done(received):
            event = await self.next(max(0.01, deadline - loop.time()))
            if event.get("event") == "job":
                received.append(event)
        return received


async def _stream(demo: Demo, query: str = "", key: str = KEY_A, **headers: str) -> Sse:
    resp = await demo.client.get(f"/v1/events{query}", headers={"Authorization": f"Bearer {key}", **headers})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return Sse(resp)


def _seen(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return [(e["data"]["id"], e["data"]["version"]) for e in events]


async def _history(demo: Demo, job_ids: list[str]) -> set[tuple[str, int]]:
    every: set[tuple[str, int]] = set()
    for job_id in job_ids:
        _, body, _ = await demo.call("GET", f"/v1/jobs/{job_id}/transitions")
        every |= {(job_id, t["version"]) for t in body["data"]}
    return every


async def test_the_stream_resumes_after_a_restart_without_a_gap_or_a_duplicate(new_demo):
    first = await new_demo()
    stream = await _stream(first)
    start = await stream.next()
    assert start == {"id": "0", "event": "position", "data": {"last_event_id": "0"}}
    text = load_case("camb").valid_input
    one = await first.submit("camb", text)
    two = await first.submit("camb", text)
    other = await first.submit("camb", text, key=KEY_B)  # another tenant's: never on this stream
    await first.wait_for(one["id"], lambda j: j["vendor_status"] == "PENDING")
    before = await stream.jobs_until(lambda got: (one["id"], 2) in _seen(got) and (two["id"], 1) in _seen(got))
    last_id = before[-1]["id"]
    stream.resp.close()
    await first.client.close()  # the gateway stops
    # while it is down the vendor finishes job one
    await first.sim(CAMB, f"/__sim__/jobs/{one['vendor_ref']['task_id']}/state", {"status": "SUCCESS", "run_id": 1})
    second = await new_demo()  # the same store
    await second.wait_for(one["id"], lambda j: j["terminal"])
    await second.submit("camb", text)  # a new transition after the restart too
    resumed = await _stream(second, **{"Last-Event-ID": last_id})
    expected = await _history(second, [one["id"], two["id"]])

    after = await resumed.jobs_until(lambda got: expected <= set(_seen(before) + _seen(got)))
    both = before + after
    pairs = [p for p in _seen(both) if p[0] in (one["id"], two["id"])]
    assert set(pairs) == expected and len(pairs) == len(set(pairs))  # no gap, no duplicate
    ids = [int(e["id"]) for e in both]
    assert ids == sorted(set(ids)) and ids[len(before)] > int(last_id)  # strictly increasing, resumed after
    assert other["id"] not in {e["data"]["id"] for e in both}
    terminal = next(e for e in after if e["data"]["id"] == one["id"] and e["data"]["terminal"])
    assert terminal["data"]["state"] == "succeeded"
    # every event is the Job at that version
    for event in after:
        assert event["data"]["links"]["self"] == f"/v1/jobs/{event['data']['id']}"
    resumed.resp.close()


async def test_filters_by_provider_and_state_and_the_position_moves_past_filtered_events(
    demo, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(routes_events, "KEEP_ALIVE_S", 0.2)
    succeeded = await _stream(demo, "?provider=camb&state=succeeded")
    elsewhere = await _stream(demo, "?provider=datafold")
    everything = await _stream(demo, "?last_event_id=0")  # the query form: from the beginning
    for stream in (succeeded, elsewhere):
        assert (await stream.next())["event"] == "position"
    job = await demo.submit("camb", load_case("camb").valid_input)
    await demo.wait_for(job["id"], lambda j: j["vendor_status"] == "PENDING")
    await demo.sim(CAMB, f"/__sim__/jobs/{job['vendor_ref']['task_id']}/state", {"status": "SUCCESS", "run_id": 1})
    done = await demo.wait_for(job["id"], lambda j: j["terminal"])

    [only] = await succeeded.jobs_until(lambda got: len(got) == 1)
    assert only["data"]["state"] == "succeeded" and only["data"]["version"] == done["version"]
    all_of_it = await everything.jobs_until(lambda got: len(got) == done["version"])
    assert [e["data"]["version"] for e in all_of_it] == list(range(1, done["version"] + 1))
    assert int(only["id"]) == int(all_of_it[-1]["id"])  # the same sequence for every reader
    # a filtered stream that sent nothing still moves its position on, so a reconnect does not rescan
    moved = await elsewhere.next()
    while moved.get("event") != "position" or int(moved["id"]) < int(all_of_it[-1]["id"]):
        assert moved.get("event") == "position", moved  # never a camb job
        moved = await elsewhere.next()
    for stream in (succeeded, elsewhere, everything):
        stream.resp.close()


async def test_bad_positions_and_keys(demo):
    for value in ("-1", "abc", str(2**63)):
        status, body, _ = await demo.call("GET", "/v1/events", headers={"Last-Event-ID": value})
        assert status == 422 and body["errors"][0]["loc"] == ["header", "Last-Event-ID"], value
    status, body, _ = await demo.call("GET", "/v1/events?state=nonsense")
    assert status == 422
    status, _, _ = await demo.call("GET", "/v1/events", key=None)
    assert status == 401
    stream = await _stream(demo, **{"Last-Event-ID": "999999"})  # an id this store never gave: from the present
    assert await stream.next() == {"id": "0", "event": "position", "data": {"last_event_id": "0"}}
    stream.resp.close()


async def test_shutdown_ends_the_stream_at_once(new_demo):
    demo = await new_demo()
    stream = await _stream(demo)
    await stream.next()
    started = asyncio.get_running_loop().time()
    await demo.client.server.close()  # the server shuts down; the client is still reading
    with pytest.raises(EOFError):
        while True:
            await stream.next(within=8.0)
    assert asyncio.get_running_loop().time() - started < 8  # not after a keep-alive period
