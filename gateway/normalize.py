"""`gateway.normalize`: one vendor status body to the canonical status (contract section 7)."""

from __future__ import annotations

from typing import Any

from gateway.plugins import get_provider
from gateway.states import CanonicalStatus
from gateway.tolerant import safe_normalize


def normalize(provider_name: str, vendor_status_body: Any) -> CanonicalStatus:
    """Never raises on a strange body; an unknown provider name raises LookupError."""
    return safe_normalize(get_provider(provider_name).normalize, vendor_status_body)
