"""The client's HTTP layer: one aiohttp session, the bearer key, typed errors, and safe retries.

Every call names an `Op` of `gateway.client.operations`, so the client only sends what the server declares.
A retried request is one that cannot do anything twice: reads, and a submit carrying an Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from gateway import __version__
from gateway.client.errors import ProblemError, TransportError, problem_error
from gateway.client.operations import Op

#: statuses worth another try of a safe request
RETRY_STATUSES = frozenset({503, 504})
#: the longest a Retry-After makes the client wait before the next try
MAX_RETRY_WAIT_S = 30.0
#: what a broken connection looks like to aiohttp
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, OSError)


def retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


async def read_body(resp: aiohttp.ClientResponse) -> Any:
    """The answer as JSON when it says so, else as text."""
    text = await resp.text(errors="replace")
    if "json" in resp.headers.get("Content-Type", ""):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class Transport:
    """The session, base URL and key shared by every call of one client."""

    def __init__(
        self,
        base_url: str,
        key: str | None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self.retries = retries
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": f"translation-gateway-client/{__version__}"})
            self._own_session = True
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()

    def _headers(self, op: Op, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        for name, value in (extra or {}).items():
            if name not in op.headers and name != "Accept":
                raise ValueError(f"{op.id} declares no header {name!r}")
            headers[name] = value
        return headers

    def _url(
        self, op: Op, path: Mapping[str, str] | None, query: Mapping[str, Any] | None
    ) -> tuple[str, dict[str, str]]:
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        unknown = set(params) - set(op.query)
        if unknown:
            raise ValueError(f"{op.id} declares no query parameter {sorted(unknown)}")
        return self.base_url + op.url_path(**dict(path or {})), params

    async def call(
        self,
        op: Op,
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = False,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> Any:
        """The parsed answer of a successful call; a ProblemError for an error answer, after the retries a
        safe request (`retry`) gets on 503/504 and broken connections."""
        url, params = self._url(op, path, query)
        attempt = 0
        error: Exception
        while True:
            try:
                async with self.session.request(
                    op.method,
                    url,
                    params=params,
                    json=body,
                    headers=self._headers(op, headers),
                    timeout=client_timeout or self.timeout,
                ) as resp:
                    answer = await read_body(resp)
                    if resp.status < 400:
                        return answer
                    error = problem_error(resp.status, answer, retry_after=retry_after(resp.headers))
            except CONNECTION_ERRORS as exc:
                error = TransportError(f"{op.method} {url}: {type(exc).__name__}: {exc}".rstrip(": "))
            if not retry or attempt >= self.retries or not _retryable(error):
                raise error
            await asyncio.sleep(_backoff(attempt, error))
            attempt += 1

    @asynccontextmanager
    async def stream(
        self,
        op: Op,
        *,
        path: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        client_timeout: aiohttp.ClientTimeout | None = None,
        accept: str = "*/*",
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open successful answer to read as it arrives (files, event streams); errors as for `call`."""
        url, params = self._url(op, path, query)
        all_headers = {**self._headers(op, headers), "Accept": accept}
        try:
            async with self.session.request(
                op.method, url, params=params, headers=all_headers, timeout=client_timeout or self.timeout
            ) as resp:
                if resp.status >= 400:
                    raise problem_error(resp.status, await read_body(resp), retry_after=retry_after(resp.headers))
                yield resp
        except CONNECTION_ERRORS as exc:
            raise TransportError(f"{op.method} {url}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _retryable(error: Exception) -> bool:
    return isinstance(error, TransportError) or (isinstance(error, ProblemError) and error.status in RETRY_STATUSES)


def _backoff(attempt: int, error: Exception) -> float:
    told = error.retry_after if isinstance(error, ProblemError) else None
    if told is not None:
        return min(told, MAX_RETRY_WAIT_S)
    return min(0.25 * 2**attempt, 4.0)
