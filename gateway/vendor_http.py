"""One configured HTTP connection to one vendor: auth header, timeouts, and vendor failures as typed errors."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import aiohttp

from gateway.errors import (
    InputError,
    VendorAuthError,
    VendorConflict,
    VendorConnectionError,
    VendorError,
    VendorMalformed,
    VendorNotFound,
    VendorPaymentRequired,
    VendorRateLimited,
    VendorServerError,
    VendorTimeout,
    VendorValidationError,
)

MAX_VENDOR_BODY = 32 * 1024 * 1024
_SEGMENT_OK = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=-]{1,200}$")


def path_segment(value: Any, *, name: str = "id") -> str:
    """A vendor id made safe to put into one URL path segment; anything else is an InputError."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or not _SEGMENT_OK.match(text) or text in {".", ".."}:
        raise InputError(f"{name} is not a valid vendor id", loc=["vendor_ref", name])
    return quote(text, safe="")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:
        return None
    return min(seconds, 3600.0)


class VendorConnection:
    """What a provider's async methods use to talk to its vendor. Owned by the gateway, one per provider."""

    def __init__(
        self,
        provider: str,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        secrets: Iterable[str] = (),
        settings: Any = None,
    ) -> None:
        self.provider = provider
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.secrets = [s for s in secrets if s]
        #: the provider's validated config model (e.g. Datafold's project_id)
        self.settings = settings
        #: per-connection cache for the provider (e.g. CAMB's language ids)
        self.cache: dict[str, Any] = {}

    def url(self, path: str) -> str:
        return self.base_url + path

    def scrub(self, text: str) -> str:
        """Remove every configured secret from text meant for a message or a log line."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Send one request; return (status, parsed JSON). Non-2xx statuses not in `allow` raise typed errors."""
        extra = {"headers": {**self.headers, **headers}} if headers else {}
        async with self._open(method, path, allow, json=json_body, params=params, data=data, **extra) as resp:
            return resp.status, self._parse(await _read_capped(resp))

    @asynccontextmanager
    async def stream(self, method: str, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open response whose body the caller streams; errors are raised before it is yielded."""
        async with self._open(method, path, ()) as resp:
            yield resp

    @asynccontextmanager
    async def _open(
        self, method: str, path: str, allow: tuple[int, ...], **kwargs: Any
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The one place a vendor request is sent: non-2xx answers (but `allow`) and transport failures,
        including those while the body is read, become typed errors."""
        try:
            kwargs.setdefault("headers", self.headers)
            async with self.session.request(method, self.url(path), timeout=self.timeout, **kwargs) as resp:
                if not (200 <= resp.status < 300) and resp.status not in allow:
                    raw = await _read_capped(resp)
                    raise self._error_for(resp.status, raw, resp.headers)
                yield resp
        except VendorError:
            raise
        except TimeoutError as exc:
            raise VendorTimeout("vendor did not answer in time", provider=self.provider) from exc
        except aiohttp.ClientError as exc:
            raise VendorConnectionError(
                f"vendor connection failed: {type(exc).__name__}", provider=self.provider
            ) from exc

    def _parse(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise VendorMalformed("vendor answered with a body that is not JSON", provider=self.provider) from exc

    def _error_for(self, status: int, raw: bytes, headers: Any) -> VendorError:
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        text = self.scrub(detail if isinstance(detail, str) else raw[:200].decode("utf-8", "replace"))
        kw: dict[str, Any] = {"provider": self.provider, "status": status}
        if status in (401, 403):
            return VendorAuthError(f"vendor refused the credentials (HTTP {status})", **kw)
        if status == 402:
            return VendorPaymentRequired("vendor requires payment (HTTP 402)", **kw)
        if status == 404:
            return VendorNotFound(text or "vendor does not know this resource", **kw)
        if status == 409:
            return VendorConflict(text or "vendor reported a conflict", body=body, **kw)
        if status in (400, 413, 415, 422):
            return VendorValidationError(
                text or f"vendor rejected the request (HTTP {status})", errors=self._validation_errors(detail), **kw
            )
        if status == 429:
            return VendorRateLimited(
                "vendor rate limit", retry_after=parse_retry_after(headers.get("Retry-After")), **kw
            )
        if status >= 500:
            return VendorServerError(
                f"vendor server error (HTTP {status})",
                retry_after=parse_retry_after(headers.get("Retry-After")),
                **kw,
            )
        return VendorError(f"unexpected vendor answer (HTTP {status})", **kw)

    def _validation_errors(self, detail: Any) -> list[dict[str, Any]] | None:
        if isinstance(detail, str):
            return [{"loc": ["input"], "msg": self.scrub(detail)}]
        if not isinstance(detail, list):
            return None
        errors = []
        for item in detail[:50]:
            if isinstance(item, dict):
                raw_loc = item.get("loc")
                loc = (
                    [p for p in raw_loc if isinstance(p, str | int) and not isinstance(p, bool)]
                    if isinstance(raw_loc, list)
                    else []
                )
                errors.append({"loc": ["input", *loc], "msg": self.scrub(str(item.get("msg", "invalid")))})
        return errors or None


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_VENDOR_BODY:
            raise VendorMalformed("vendor body too large")
        chunks.append(chunk)
    return b"".join(chunks)
