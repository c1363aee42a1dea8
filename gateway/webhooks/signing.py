"""The `Gateway-Signature` header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.

Receivers verify with `verify(secret, raw_body, header)`: recompute the HMAC over the exact bytes received,
compare in constant time, and refuse timestamps outside a tolerance (replays)."""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Gateway-Signature"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for this body, signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    return f"t={t},v1={_digest(secret, body, t)}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300.0, now: float | None = None) -> bool:
    """True when `header` signs exactly `body` with `secret` within `tolerance_s` of now."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - t) > tolerance_s:
        return False
    expected = _digest(secret, body, t)
    return any(hmac.compare_digest(expected, value) for key, value in parts.items() if key == "v1")
