"""One try of a webhook: POST the signed body, read at most a few KiB of the answer, and say what happened in
words fit for the tenant's delivery log (never a resolved address, never a secret, never the receiver's body)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from gateway.webhooks.schedule import retry_after_seconds
from gateway.webhooks.ssrf import AddressRefused

#: the most of a receiver's answer read (then the connection is dropped rather than drained)
MAX_RESPONSE_BYTES = 4096

#: error classes of the delivery log
HTTP_STATUS = "http_status"
TIMEOUT = "timeout"
CONNECTION = "connection"
TLS = "tls"
REFUSED = "refused"
NO_SECRET = "no_secret"


@dataclass(frozen=True)
class Outcome:
    """What one try came to: the receiver's status, or an error class with a message."""

    status: int | None
    error: str | None
    message: str | None
    duration_ms: int
    #: seconds the receiver asked to wait (Retry-After), if it did
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        """The receiver answered 410 Gone: no more deliveries to this endpoint."""
        return self.status == 410


def refusal(exc: BaseException) -> AddressRefused | None:
    """The guard's refusal behind a connection error (aiohttp wraps the resolver's OSError), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AddressRefused):
            return current
        seen.add(id(current))
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, AddressRefused):
            return os_error
        current = current.__cause__ or current.__context__
    return None


def _failure(exc: Exception, timeout_s: float) -> tuple[str, str]:
    """(error class, message) of a try that got no answer; messages name no address (aiohttp's do)."""
    refused = refusal(exc)
    if refused is not None:
        return REFUSED, f"webhook URL refused: {refused}"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return TIMEOUT, f"no answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientSSLError):
        return TLS, f"TLS failed ({type(exc).__name__})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return CONNECTION, f"could not connect ({type(exc).__name__})"
    return CONNECTION, f"the connection failed ({type(exc).__name__})"


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    now: datetime,
) -> Outcome:
    """POST one try and classify it; never raises but for cancellation."""
    started = time.monotonic()
    status: int | None = None
    retry_after: float | None = None
    try:
        async with session.post(
            url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
            raise_for_status=False,
        ) as resp:
            status = resp.status
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"), now)
            await resp.content.read(MAX_RESPONSE_BYTES)  # a bounded read; the rest is never drained:
            if not resp.content.at_eof():
                resp.close()  # a longer answer's connection is dropped, not returned to the pool
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if status is None:
            error, message = _failure(exc, timeout_s)
            return Outcome(None, error, message, _ms_since(started))
        # the receiver answered but its body failed: the status is the answer
    assert status is not None
    duration = _ms_since(started)
    if 200 <= status < 300:
        return Outcome(status, None, None, duration)
    message = f"receiver answered HTTP {status}"
    if status == 410:
        message += " Gone: deliveries to this URL are stopped"
    return Outcome(status, HTTP_STATUS, message, duration, retry_after)


def _ms_since(started: float) -> int:
    return max(0, round((time.monotonic() - started) * 1000))
