"""`gateway.normalize`: one vendor status body to the canonical status (contract section 7)."""

from __future__ import annotations

from typing import Any

from gateway.plugins import get_provider
from gateway.states import CanonicalStatus


def normalize(provider_name: str, vendor_status_body: Any) -> CanonicalStatus:
    """Never raises on a strange body; an unknown provider name raises LookupError."""
    return get_provider(provider_name).canonical_status(vendor_status_body)
