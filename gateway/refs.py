"""Private vendor_ref fields: per-job vendor secrets (e.g. a document key the vendor wants with every status
read) that the gateway keeps for the provider's I/O methods and never shows.

A provider names them in `private_ref_fields`. The gateway splits every vendor_ref it gets (from `submit`,
`attach` or `refine_ref`) into the public part, stored as `vendor_ref` and shown in the Job, and the private
fields, sealed into one opaque string (`JobRecord.private_ref`) that no renderer reads. The provider's I/O
methods get the whole ref back, through a connection that scrubs those values from every message.

Sealing: with a key configured (`[store] secret_key_env`, Fernet keys, comma-separated for rotation: the first
seals, all open), the private fields are encrypted at rest (AES-128-CBC with HMAC-SHA256), so a copy of the
database or a backup does not give them away. Without a key they are kept as plain JSON in their own column,
still never rendered, and the gateway warns at start when a configured provider has private fields.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger("gateway.refs")

FERNET = "fernet:"
PLAIN = "plain:"


class SealError(Exception):
    """A sealed private ref cannot be opened (no key, or not one of the configured keys)."""


def fernet_keys(value: str | None) -> list[bytes]:
    """The Fernet keys of a comma-separated setting; ValueError names the one that is not a Fernet key."""
    keys = [k.strip().encode() for k in (value or "").split(",") if k.strip()]
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(f"key {index + 1} is not a Fernet key (32 url-safe base64 bytes)") from None
    return keys


class RefSealer:
    """Splits vendor_refs into public and private parts, seals the private one and opens it again."""

    def __init__(self, keys: Iterable[bytes] = ()) -> None:
        fernets = [Fernet(k) for k in keys]
        self._fernet = MultiFernet(fernets) if fernets else None

    @classmethod
    def from_env(cls, env: str | None) -> RefSealer:
        return cls(fernet_keys(os.environ.get(env)) if env else ())

    @staticmethod
    def new_key() -> bytes:
        """A fresh Fernet key (what `[store] secret_key_env` names a variable holding)."""
        return Fernet.generate_key()

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    @staticmethod
    def split(ref: Mapping[str, Any], private: Collection[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public part, private fields) of a vendor_ref."""
        public = {k: v for k, v in ref.items() if k not in private}
        return public, {k: v for k, v in ref.items() if k in private}

    def seal(self, fields: Mapping[str, Any]) -> str | None:
        """The private fields as one opaque string; None when there are none."""
        if not fields:
            return None
        data = json.dumps(dict(fields), sort_keys=True, separators=(",", ":"))
        if self._fernet is None:
            return PLAIN + data
        return FERNET + self._fernet.encrypt(data.encode()).decode()

    def open(self, sealed: str | None) -> dict[str, Any]:
        """The private fields of a sealed string (empty for None); SealError when they cannot be read."""
        if not sealed:
            return {}
        if sealed.startswith(PLAIN):
            data = sealed[len(PLAIN) :]
        elif sealed.startswith(FERNET):
            if self._fernet is None:
                raise SealError("the job's private vendor_ref fields are encrypted and no store key is configured")
            try:
                data = self._fernet.decrypt(sealed[len(FERNET) :].encode()).decode()
            except InvalidToken:
                raise SealError("the job's private vendor_ref fields were sealed with a key not configured") from None
        else:
            raise SealError("the job's private vendor_ref fields are in an unknown form")
        fields = json.loads(data)
        return fields if isinstance(fields, dict) else {}

    def sealed_for(self, ref: Mapping[str, Any], private: Collection[str]) -> tuple[dict[str, Any], str | None]:
        """(public part, sealed private fields) of a whole vendor_ref."""
        public, fields = self.split(ref, private)
        return public, self.seal(fields)


def secret_values(fields: Mapping[str, Any]) -> list[str]:
    """The string values of private fields: what is scrubbed from messages and logs (a private field is a
    string; other values are kept private all the same, but too short-lived in text to scrub)."""
    return [value for value in fields.values() if isinstance(value, str) and value]
