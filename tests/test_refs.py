"""Sealing private vendor_ref fields (gateway.refs): encrypted with the configured key, opened with any of the
configured keys (rotation), refused with a clear error otherwise; plain but apart without a key."""

from __future__ import annotations

import pytest

from gateway.refs import FERNET, PLAIN, RefSealer, SealError, fernet_keys, secret_values


def test_sealed_fields_are_encrypted_and_open_again():
    sealer = RefSealer([RefSealer.new_key()])
    sealed = sealer.seal({"document_key": "dk-123456"})
    assert sealed is not None and sealed.startswith(FERNET) and "dk-123456" not in sealed
    assert sealer.open(sealed) == {"document_key": "dk-123456"}
    assert sealer.seal({}) is None and sealer.open(None) == {}


def test_a_rotated_key_still_opens_what_the_old_key_sealed():
    old, new = RefSealer.new_key(), RefSealer.new_key()
    sealed = RefSealer([old]).seal({"k": "v-secret"})
    assert RefSealer([new, old]).open(sealed) == {"k": "v-secret"}
    with pytest.raises(SealError, match="key not configured"):
        RefSealer([new]).open(sealed)
    with pytest.raises(SealError, match="no store key is configured"):
        RefSealer().open(sealed)


def test_without_a_key_fields_are_kept_plain_and_apart():
    sealer = RefSealer()
    sealed = sealer.seal({"k": "v"})
    assert sealed == PLAIN + '{"k":"v"}' and sealer.open(sealed) == {"k": "v"}
    assert RefSealer([RefSealer.new_key()]).open(sealed) == {"k": "v"}  # a key added later still reads them


def test_split_and_secret_values():
    public, private = RefSealer.split({"id": "d1", "key": "s3cr3t", "n": 5}, {"key", "n"})
    assert public == {"id": "d1"} and private == {"key": "s3cr3t", "n": 5}
    assert secret_values(private) == ["s3cr3t"]


def test_a_key_setting_that_is_not_a_fernet_key_is_named():
    good = RefSealer.new_key().decode()
    assert len(fernet_keys(f"{good}, {good}")) == 2
    with pytest.raises(ValueError, match="key 2 is not a Fernet key"):
        fernet_keys(f"{good},not-a-key")
