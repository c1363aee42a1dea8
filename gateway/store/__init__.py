"""The gateway's durable store (contract sections 1 and 3): open one with `open_store(url, state_dir=...)`."""

from gateway.store.base import (
    IdempotencyMismatch,
    JobExists,
    JobNotFound,
    Store,
    StoreError,
    WebhookPayloadFactory,
    open_store,
)
from gateway.store.records import JobRecord, OutboxEvent, StoredArtifact, TransitionRecord

__all__ = [
    "IdempotencyMismatch",
    "JobExists",
    "JobNotFound",
    "JobRecord",
    "OutboxEvent",
    "Store",
    "StoreError",
    "StoredArtifact",
    "TransitionRecord",
    "WebhookPayloadFactory",
    "open_store",
]
