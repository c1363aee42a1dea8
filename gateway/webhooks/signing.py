"""The `Gateway-Signature` header on every webhook (contract section 3).

The header value is ``t=<unix seconds>,v1=<hex HMAC-SHA256>``, where the HMAC is keyed with the tenant's webhook
secret (UTF-8) and computed over the ASCII timestamp, a dot, and the raw request body exactly as sent::

    HMAC-SHA256(secret, b"<t>." + raw_body)

A receiver should:

1. read the raw body bytes (before any JSON parsing or re-serialisation);
2. recompute the HMAC for the header's `t` and compare it with every `v1` value in constant time;
3. refuse a `t` too far from its own clock (a replayed request), 5 minutes by default;
4. answer 2xx once the event is stored; the gateway retries anything else with the same
   `Gateway-Event-Id`, so deduplicate on that id (delivery is at least once).

In Python, with this package installed::

    from gateway.webhooks import verify

    async def hook(request):
        body = await request.read()
        if not verify(SECRET, body, request.headers.get("Gateway-Signature", "")):
            return web.Response(status=400)
        ...

Every try of an event is signed afresh (a new `t`), so a retried event still verifies within the tolerance.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

#: the request header carrying the signature
SIGNATURE_HEADER = "Gateway-Signature"
#: the request header carrying the event id (the same on every try of one event)
EVENT_ID_HEADER = "Gateway-Event-Id"
#: kept for older imports
HEADER = SIGNATURE_HEADER

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `Gateway-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    if not secret:
        raise ValueError("a webhook secret is required to sign")
    t = int(timestamp)
    return f"t={t},v1={_digest(secret, body, t)}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """True when `header` signs exactly `body` with `secret`, at a time within `tolerance_s` of `now`.

    `now` defaults to the current time. Malformed headers give False (never an exception); several `v1`
    values are accepted (any one matching suffices); comparisons are constant-time.
    """
    if not secret or not header:
        return False
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamps.append(value.strip())
        elif key == "v1":
            signatures.append(value.strip())
    if len(timestamps) != 1 or not signatures or not _TIMESTAMP.fullmatch(timestamps[0]):
        return False
    t = int(timestamps[0])
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = _digest(secret, body, t).encode()
    matched = False
    for value in signatures:  # no early exit: every candidate is compared
        matched |= hmac.compare_digest(expected, value.encode("utf-8", "replace"))
    return matched
