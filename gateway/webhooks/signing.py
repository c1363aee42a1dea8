"""Webhook signatures (contract section 3, docs/webhooks.md): Standard Webhooks, and the deprecated
`Gateway-Signature` header.

Standard Webhooks (https://www.standardwebhooks.com), sent on every try:

    webhook-id: <event id>                 the same on every try of one event
    webhook-timestamp: <unix seconds>      the time of this try
    webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>"> [...]

One `v1,...` per secret the tenant holds (two during a rotation), space-separated. The HMAC key is taken from
the tenant's secret the way the `standardwebhooks` packages take it, so a receiver passes the secret unchanged:

- a secret `whsec_<base64>` (the recommended form) keys the HMAC with the base64-decoded bytes;
- any other secret (the older plain form) keys it with its UTF-8 bytes (with the `standardwebhooks` package,
  pass `secret.encode()`).

Deprecated, kept for existing receivers: `Gateway-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
body>">[,v1=<...>]` keyed with the secret's UTF-8 bytes (the whole string, `whsec_` included), and the
`Gateway-Event-Id` header (the same value as `webhook-id`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence

#: the deprecated signature header
SIGNATURE_HEADER = "Gateway-Signature"
#: the deprecated event id header (the same value as `webhook-id`)
EVENT_ID_HEADER = "Gateway-Event-Id"
#: kept for older imports
HEADER = SIGNATURE_HEADER

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
#: the prefix of a secret in the Standard Webhooks serialization
SECRET_PREFIX = "whsec_"
#: the size of a decoded `whsec_` key the specification allows
MIN_KEY_BYTES, MAX_KEY_BYTES = 24, 64
#: a plain (non-`whsec_`) secret's minimum length
MIN_PLAIN_CHARS = 16
#: how far a receiver should let a signature's time be from its own clock
TOLERANCE_S = 300.0

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def standard_key(secret: str) -> bytes:
    """The HMAC key of a tenant secret: the decoded bytes of `whsec_<base64>`, else the UTF-8 bytes.

    ValueError (without the secret in the message) when a `whsec_` secret is not base64 of 24-64 bytes, or a
    plain secret is shorter than 16 characters.
    """
    if not secret.startswith(SECRET_PREFIX):
        if len(secret) < MIN_PLAIN_CHARS:
            raise ValueError(
                f"a webhook secret must be whsec_<base64> or at least {MIN_PLAIN_CHARS} characters of plain text"
            )
        return secret.encode()
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a whsec_ webhook secret must be followed by standard base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"a whsec_ webhook secret must encode {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes")
    return key


def _standard_digest(key: bytes, event_id: str, timestamp: int, body: bytes) -> bytes:
    return hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def standard_signature(secrets: Sequence[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64>` per secret, space-separated, in the given order."""
    if not secrets:
        raise ValueError("a webhook secret is required to sign")
    if "." in event_id:
        raise ValueError("a webhook id must not contain '.'")
    return " ".join(
        "v1," + base64.b64encode(_standard_digest(standard_key(s), event_id, int(timestamp), body)).decode()
        for s in secrets
    )


def signature_headers(secrets: Sequence[str], event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Every signature header of one try: the Standard Webhooks three and the deprecated two."""
    t = int(timestamp)
    return {
        WEBHOOK_ID: event_id,
        WEBHOOK_TIMESTAMP: str(t),
        WEBHOOK_SIGNATURE: standard_signature(secrets, event_id, t, body),
        SIGNATURE_HEADER: sign(secrets, body, t),
        EVENT_ID_HEADER: event_id,
    }


def verify_standard(
    secret: str, body: bytes, headers: Mapping[str, str], *, tolerance_s: float = TOLERANCE_S, now: float | None = None
) -> bool:
    """True when the Standard Webhooks headers sign exactly `body` with `secret` at a time within `tolerance_s`
    of `now` (default: the current time). Malformed input gives False; comparisons are constant-time."""
    lower = {k.lower(): v for k, v in headers.items()}
    event_id, stamp, signatures = (lower.get(h, "") for h in (WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE))
    if not (secret and event_id and signatures and _TIMESTAMP.fullmatch(stamp)):
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_s:
        return False
    try:
        expected = _standard_digest(standard_key(secret), event_id, int(stamp), body)
    except ValueError:
        return False
    matched = False
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(expected, candidate)
    return matched


# -- the deprecated Gateway-Signature header ---------------------------------------------------------------


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secrets: str | Sequence[str], body: bytes, timestamp: int) -> str:
    """The deprecated `Gateway-Signature` value for `body` sent at `timestamp` (unix seconds): one `v1=` per
    secret."""
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys or not all(keys):
        raise ValueError("a webhook secret is required to sign")
    t = int(timestamp)
    return ",".join([f"t={t}", *(f"v1={_digest(s, body, t)}" for s in keys)])


def verify(
    secret: str, body: bytes, header: str, *, tolerance_s: float = TOLERANCE_S, now: float | None = None
) -> bool:
    """True when the deprecated `Gateway-Signature` header signs exactly `body` with `secret`, at a time within
    `tolerance_s` of `now` (default: the current time).

    Malformed headers give False (never an exception); any one of several `v1` values may match; comparisons
    are constant-time.
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
