"""Signed webhook delivery from the store's outbox (contract section 3): signing, the SSRF guard, the dispatcher."""

from gateway.webhooks.dispatcher import WebhookDispatcher, backoff_delay
from gateway.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign, verify
from gateway.webhooks.ssrf import (
    AddressRefused,
    GuardedResolver,
    address_refused,
    check_url,
    check_url_static,
    check_url_syntax,
)

__all__ = [
    "EVENT_ID_HEADER",
    "SIGNATURE_HEADER",
    "AddressRefused",
    "GuardedResolver",
    "WebhookDispatcher",
    "address_refused",
    "backoff_delay",
    "check_url",
    "check_url_static",
    "check_url_syntax",
    "sign",
    "verify",
]
