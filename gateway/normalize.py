"""`gateway.normalize`: one vendor status body to the canonical status (contract section 7)."""

from __future__ import annotations

from typing import Any

from gateway.plugins import get_provider
from gateway.states import CanonicalStatus, State


def normalize(provider_name: str, vendor_status_body: Any) -> CanonicalStatus:
    """Never raises on a strange body; an unknown provider name raises LookupError."""
    provider = get_provider(provider_name)
    try:
        return provider.normalize(vendor_status_body)
    except Exception:  # a plugin's bug must not break mapping totality
        return CanonicalStatus(state=State.UNKNOWN, vendor_status=None)
