"""One configured HTTP connection to one vendor: auth header, timeouts, and vendor failures as typed errors."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
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
    VendorQuotaExceeded,
    VendorRateLimited,
    VendorServerError,
    VendorTimeout,
    VendorValidationError,
    _RetryLater,
)
from gateway.tolerant import field_at

MAX_VENDOR_BODY = 32 * 1024 * 1024
#: what a failed vendor request raises, each turned into its typed error by `VendorConnection._failure`
_FAILURES = (VendorError, TimeoutError, aiohttp.ClientError)
#: where most vendors put the message of an error body (FastAPI `detail`, `message`, `{"error": {"message"}}`)
DEFAULT_ERROR_FIELDS = ("detail", "message", "error.message", "error")
#: the longest vendor message the gateway repeats
MAX_MESSAGE = 500
_SEGMENT_OK = re.compile(r"^[A-Za-z0-9._~:@!$&'()*+,;=-]{1,200}$")
#: a segment of unreserved characters only: what `quote(..., safe="")` leaves as it is (most vendor ids)
_SEGMENT_PLAIN = re.compile(r"^[A-Za-z0-9._~-]+$")


def path_segment(value: Any, *, name: str = "id") -> str:
    """A vendor id made safe to put into one URL path segment; anything else is an InputError."""
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    if text is None or not _SEGMENT_OK.match(text) or text in {".", ".."}:
        raise InputError(f"{name} is not a valid vendor id", loc=["vendor_ref", name])
    return text if _SEGMENT_PLAIN.match(text) else quote(text, safe="")


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
    """What a provider's async methods use to talk to its vendor. Owned by the gateway, one per provider.

    Every request goes through `request_json` or `stream`; a non-2xx answer (but the statuses in `allow`) and
    every transport failure come back as a typed error of `gateway.errors`, whose message is the vendor's own
    (read from `error_fields` of the answer's JSON body), scrubbed of every secret the connection knows.
    """

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
        error_fields: Sequence[str] = DEFAULT_ERROR_FIELDS,
        status_errors: Mapping[int, type[VendorError]] | None = None,
    ) -> None:
        self.provider = provider
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.secrets = [s for s in secrets if s]
        #: the provider's validated config model (e.g. Datafold's project_id)
        self.settings = settings
        #: per-connection cache for the provider (e.g. CAMB's language ids); shared by `with_secrets` views
        self.cache: dict[str, Any] = {}
        #: dotted paths of the vendor's error body where its message is, tried in order
        self.error_fields = tuple(error_fields)
        #: unusual HTTP statuses and the typed error each means (e.g. {456: VendorQuotaExceeded})
        self.status_errors = dict(status_errors or {})

    def url(self, path: str) -> str:
        return self.base_url + path

    def scrub(self, text: str) -> str:
        """Remove every configured secret from text meant for a message or a log line."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def with_secrets(self, secrets: Iterable[str]) -> VendorConnection:
        """This connection, also scrubbing these per-job secrets (a job's private vendor_ref values) from every
        message it makes. Same session, settings and cache; the gateway passes such a view to I/O methods."""
        extra = [s for s in secrets if isinstance(s, str) and s]
        if not extra:
            return self
        view = copy.copy(self)
        view.secrets = [*self.secrets, *extra]
        return view

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> tuple[int, Any]:
        """Send one request; return (status, parsed JSON body).

        `json_body` is sent as JSON; `data` as given instead (bytes, or a dict sent as a form, with a
        matching Content-Type in `headers` for anything else such as multipart); `params` is the query;
        `headers` are added to the connection's (auth) headers for this request only. A non-2xx answer
        whose status is in `allow` is returned like a 2xx one (the caller reads it; `error_for` gives its
        typed error when the caller wants one); any other non-2xx answer raises its typed error.
        """
        # the same request as `_open`, without a context-manager generator: every status poll comes through here
        try:
            async with self._send(method, path, json_body, params, data, headers) as resp:
                status = resp.status
                if not (200 <= status < 300) and status not in allow:
                    raise self.error_for(status, await _read_capped(resp), resp.headers)
                raw = await _read_capped(resp)
        except _FAILURES as exc:
            failure = self._failure(exc)
            if failure is exc:
                raise
            raise failure from exc
        return status, self._parse(raw)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        allow: tuple[int, ...] = (),
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """The same request as `request_json`, yielding the open response whose body the caller streams
        (`resp.content.iter_chunked(n)`); a failed answer raises its typed error before anything is yielded."""
        async with self._open(method, path, allow, json_body, params, data, headers) as resp:
            yield resp

    @asynccontextmanager
    async def _open(
        self,
        method: str,
        path: str,
        allow: tuple[int, ...],
        json_body: Any,
        params: Mapping[str, str] | None,
        data: Any,
        headers: Mapping[str, str] | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streamed vendor request: non-2xx answers (but `allow`) and transport failures, including those while
        the caller reads the body, become typed errors (as in `request_json`)."""
        try:
            async with self._send(method, path, json_body, params, data, headers) as resp:
                if not (200 <= resp.status < 300) and resp.status not in allow:
                    raise self.error_for(resp.status, await _read_capped(resp), resp.headers)
                yield resp
        except _FAILURES as exc:
            failure = self._failure(exc)
            if failure is exc:
                raise
            raise failure from exc

    def _send(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Mapping[str, str] | None,
        data: Any,
        headers: Mapping[str, str] | None,
    ) -> Any:
        """The one place a vendor request is sent (aiohttp's request context manager, not entered yet)."""
        return self.session.request(
            method,
            self.url(path),
            timeout=self.timeout,
            json=json_body,
            params=params,
            data=data,
            headers={**self.headers, **headers} if headers else self.headers,
        )

    def _failure(self, exc: BaseException) -> BaseException:
        """The typed error a failed request raises: a VendorError (ours, or the caller's while it read a
        streamed body) scrubbed of every secret, a timeout or transport failure as its VendorError."""
        if isinstance(exc, VendorError):
            return self.scrubbed(exc)
        if isinstance(exc, TimeoutError):
            return VendorTimeout("vendor did not answer in time", provider=self.provider)
        return VendorConnectionError(f"vendor connection failed: {type(exc).__name__}", provider=self.provider)

    def _parse(self, raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise VendorMalformed("vendor answered with a body that is not JSON", provider=self.provider) from exc

    def scrubbed(self, exc: VendorError) -> VendorError:
        """`exc` with every secret this connection knows removed from its message and error details."""
        exc.message = self.scrub(exc.message)
        exc.args = (exc.message,)
        errors = getattr(exc, "errors", None)
        if isinstance(errors, list):
            exc.errors = [{**e, "msg": self.scrub(str(e.get("msg", "")))} for e in errors]  # type: ignore[attr-defined]
        return exc

    def message_in(self, body: Any) -> str | None:
        """The vendor's error message in a parsed error body: the first of `error_fields` holding a non-empty
        string (or a list of validation entries, summarized), scrubbed and cut to a readable length."""
        for path in self.error_fields:
            value = field_at(body, path)
            if isinstance(value, str) and value.strip():
                return _cap(self.scrub(" ".join(value.split())))
            if isinstance(value, list) and (entries := self._validation_errors(value)):
                return _cap(
                    "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'input'}: {e['msg']}" for e in entries[:5])
                )
        return None

    def error_for(self, status: int, raw: bytes, headers: Mapping[str, str] | None = None) -> VendorError:
        """The typed error for a non-2xx vendor answer (its status, raw body and headers): a provider's
        `status_errors` first, then the usual meaning of the status. Never the raw body in the message."""
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            body = None
        headers = headers or {}
        message = self.message_in(body) if body is not None else self._plain_text(raw)
        retry_after = parse_retry_after(headers.get("Retry-After"))
        kw: dict[str, Any] = {"provider": self.provider, "status": status}
        mapped = self.status_errors.get(status)
        if mapped is not None:
            return _typed(
                mapped, message or f"vendor answered HTTP {status}", body, retry_after, self._details(body), kw
            )
        if status in (401, 403):
            return VendorAuthError(_joined(f"vendor refused the credentials (HTTP {status})", message), **kw)
        if status == 402:
            return VendorQuotaExceeded(
                message or "vendor quota used up or payment required (HTTP 402)", retry_after=retry_after, **kw
            )
        if status == 404:
            return VendorNotFound(message or "vendor does not know this resource", **kw)
        if status == 409:
            return VendorConflict(message or "vendor reported a conflict", body=body, **kw)
        if status in (400, 413, 415, 422):
            text = message or f"vendor rejected the request (HTTP {status})"
            return VendorValidationError(text, errors=self._details(body) or [{"loc": ["input"], "msg": text}], **kw)
        if status == 429:
            return VendorRateLimited(_joined("vendor rate limit", message), retry_after=retry_after, **kw)
        if status >= 500:
            return VendorServerError(
                _joined(f"vendor server error (HTTP {status})", message), retry_after=retry_after, **kw
            )
        return VendorError(_joined(f"unexpected vendor answer (HTTP {status})", message), **kw)

    def _plain_text(self, raw: bytes) -> str | None:
        """A short plain-text error body as a message (never markup such as an HTML error page, never bytes)."""
        text = " ".join(raw[:400].decode("utf-8", "replace").split())
        if not text or text.startswith("<") or "\ufffd" in text or not text.isprintable():
            return None
        return _cap(self.scrub(text), 200)

    def _details(self, body: Any) -> list[dict[str, Any]] | None:
        """Validation entries ({loc, msg}) from the first error field holding a list of them."""
        for path in self.error_fields:
            value = field_at(body, path)
            if isinstance(value, list) and (entries := self._validation_errors(value)):
                return entries
        return None

    def _validation_errors(self, detail: list[Any]) -> list[dict[str, Any]] | None:
        errors = []
        for item in detail[:50]:
            if isinstance(item, dict):
                raw_loc = item.get("loc")
                loc = (
                    [p for p in raw_loc if isinstance(p, str | int) and not isinstance(p, bool)]
                    if isinstance(raw_loc, list)
                    else []
                )
                errors.append({"loc": ["input", *loc], "msg": _cap(self.scrub(str(item.get("msg", "invalid"))))})
        return errors or None


def _cap(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _joined(what: str, message: str | None) -> str:
    return f"{what}: {message}" if message else what


def _typed(
    cls: type[VendorError],
    message: str,
    body: Any,
    retry_after: float | None,
    details: list[dict[str, Any]] | None,
    kw: dict[str, Any],
) -> VendorError:
    """An error of a provider-chosen class, with the extra fields its kind carries."""
    if issubclass(cls, _RetryLater):
        return cls(message, retry_after=retry_after, **kw)
    if issubclass(cls, VendorValidationError):
        return cls(message, errors=details, **kw)
    if issubclass(cls, VendorConflict):
        return cls(message, body=body, **kw)
    return cls(message, **kw)


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body, at most MAX_VENDOR_BODY bytes (VendorMalformed past that)."""
    length = resp.content_length
    if length is not None and length <= MAX_VENDOR_BODY and not resp.headers.get("Content-Encoding"):
        return await resp.content.read()  # a plain body of a known, acceptable length (e.g. every status answer)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_VENDOR_BODY:
            raise VendorMalformed("vendor body too large")
        chunks.append(chunk)
    return b"".join(chunks)
