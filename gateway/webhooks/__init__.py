"""Signed webhook delivery from the store's outbox (contract section 3, docs/webhooks.md).

`signing` (Standard Webhooks and the deprecated Gateway-Signature), `ssrf` (the network rules), `schedule`
(when to try again), `attempt` (one try), `dispatcher` (the delivery loop). Import from the modules; this package
re-exports nothing, so that the configuration can use `signing` without importing the dispatcher.
"""
