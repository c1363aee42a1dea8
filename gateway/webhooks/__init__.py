"""Signed webhook delivery from the store's outbox (contract section 3)."""

from gateway.webhooks.dispatcher import WebhookDispatcher
from gateway.webhooks.signing import sign, verify
from gateway.webhooks.ssrf import GuardedResolver, check_url

__all__ = ["GuardedResolver", "WebhookDispatcher", "check_url", "sign", "verify"]
