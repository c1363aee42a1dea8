"""Errors aiohttp answers before any middleware runs (issue class 8): a request line or header its parser
refuses is answered as application/problem+json too, by the server `gateway serve` runs (raw bytes on a socket:
an HTTP client library would refuse to send them)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.config import parse_config
from gateway.server.app import create_app, start
from gateway.server.run import demo_config
from support.demo import FAST_POLL, KEY_A
from support.demo import vendor_requests as demo_vendor_requests


async def vendor_requests(sim_server) -> dict[str, int]:
    async with aiohttp.ClientSession() as session:
        return await demo_vendor_requests(session, str(sim_server.make_url("")).rstrip("/"))


@pytest.fixture
async def served(sim_server, tmp_path):
    """The demo wiring served the way `gateway serve` serves it; yields (host, port)."""
    data = demo_config(str(sim_server.make_url("")).rstrip("/"), poll=FAST_POLL)
    config, settings = parse_config(data, source="test")
    runner = await start(create_app(config, settings, state_dir=tmp_path / "state"), "127.0.0.1", 0)
    try:
        yield runner.addresses[0][:2]
    finally:
        await runner.cleanup()


async def exchange(address, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one answer (status, headers, body)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(raw)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
        return status, headers, body
    finally:
        writer.close()


def request(path: str = "/v1/jobs", *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: gateway", f"Authorization: Bearer {KEY_A}".encode()]
    return b"\r\n".join([*lines, *headers, b"", b""])


@pytest.mark.parametrize(
    "raw",
    [
        request("/v1/jobs", b"X-Long: " + b"a" * 9000),
        request("/v1/jobs?" + "a" * 9000),
        request("/v1/jobs", *[f"X-H{i}: v".encode() for i in range(200)]),
        request("/v1/jobs", b"X-Bad: a\x01b"),
        request("/v1/jobs", b"Bad Header: v"),
        request("/v1/jobs", b"Content-Length: -1"),
        request("/v1/jobs", b"Content-Length: 1", b"Transfer-Encoding: chunked", method=b"POST"),
        b"GARBAGE\r\n\r\n",
        b"GET /v1/jobs HTTP/9.9\r\nHost: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello on the plain port
    ],
    ids=["long_header", "long_request_line", "too_many_headers", "control_char", "space_in_name",
         "negative_length", "length_and_chunked", "garbage", "http_9", "tls_hello"],
)  # fmt: skip
async def test_what_the_http_parser_refuses_is_problem_json(served, sim_server, raw):
    before = await vendor_requests(sim_server)
    status, headers, body = await exchange(served, raw)
    assert status == 400
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["code"] == "bad_request" and problem["detail"]
    assert "a" * 100 not in problem["detail"]  # the refused bytes are not echoed
    status, headers, body = await exchange(served, request("/v1/jobs"))  # the server is fine afterwards
    assert status == 200 and json.loads(body) == {"data": [], "next_cursor": None}
    assert await vendor_requests(sim_server) == before


async def test_bytes_that_are_not_utf8_in_a_parsed_header_are_a_422(served):
    status, headers, body = await exchange(served, request("/v1/jobs", b"Idempotency-Key: \xff\xfe", method=b"POST"))
    assert status == 422 and headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    path = "/v1/jobs/job_" + "0" * 24 + "/events"
    status, _, body = await exchange(served, request(path, b"Last-Event-ID: \xb2"))
    assert status == 422 and json.loads(body)["errors"][0]["loc"] == ["header", "Last-Event-ID"]
    status, _, body = await exchange(served, request("/v1/jobs", b"X-Request-Id: \xff"))
    assert status == 200
