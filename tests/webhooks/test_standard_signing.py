"""Standard Webhooks signatures: what a receiver with the `standardwebhooks` package accepts, secret forms, and
several signatures at once (a rotation)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from gateway.config import ConfigError, WebhookSecrets, parse_config
from gateway.config_check import findings
from gateway.webhooks.signing import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    signature_headers,
    standard_key,
    standard_signature,
    verify,
    verify_standard,
)

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OTHER = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
PLAIN = "a-plain-old-secret-of-2024"
BODY = b'{"id":"evt_job_1_1","type":"job.transition","job":{"id":"job_1","version":1}}'
EVENT = "evt_job_0123456789abcdef01234567_1"


def test_the_signature_is_base64_hmac_of_id_dot_timestamp_dot_body_keyed_with_the_decoded_secret():
    t = 1_700_000_000
    expected = hmac.new(KEY, f"{EVENT}.{t}.".encode() + BODY, hashlib.sha256).digest()
    assert standard_signature([SECRET], EVENT, t, BODY) == "v1," + base64.b64encode(expected).decode()


def test_a_plain_secret_keys_the_hmac_with_its_utf8_bytes():
    assert standard_key(PLAIN) == PLAIN.encode()
    assert standard_key(SECRET) == KEY
    assert standard_key(SECRET.rstrip("=")) == KEY  # unpadded base64 too


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("whsec_not base64!", "standard base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "24 to 64 bytes"),
        ("whsec_" + base64.b64encode(bytes(65)).decode(), "24 to 64 bytes"),
        ("too-short", "at least 16 characters"),
    ],
)
def test_malformed_secrets_are_refused_without_showing_them(secret, problem):
    with pytest.raises(ValueError, match=problem) as caught:
        standard_key(secret)
    assert secret not in str(caught.value)
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_config({"tenants": {"a": {"webhook_secret": secret}}})
    assert secret not in str(caught.value)


@pytest.mark.parametrize("secret", [SECRET, OTHER])
def test_the_standardwebhooks_package_verifies_what_the_gateway_signs(secret):
    now = int(time.time())
    headers = signature_headers([secret], EVENT, now, BODY)
    assert Webhook(secret).verify(BODY, headers) == {
        "id": "evt_job_1_1",
        "type": "job.transition",
        "job": {"id": "job_1", "version": 1},
    }
    assert verify_standard(secret, BODY, headers)
    assert headers[WEBHOOK_ID] == headers[EVENT_ID_HEADER] == EVENT and headers[WEBHOOK_TIMESTAMP] == str(now)
    assert verify(secret, BODY, headers[SIGNATURE_HEADER])  # the deprecated header, same secret string
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_a_plain_secret_verifies_with_the_package_given_its_bytes():
    headers = signature_headers([PLAIN], EVENT, int(time.time()), BODY)
    Webhook(PLAIN.encode()).verify(BODY, headers)


def test_two_secrets_give_two_signatures_each_verifying_alone():
    now = int(time.time())
    headers = signature_headers([OTHER, SECRET], EVENT, now, BODY)
    assert len(headers[WEBHOOK_SIGNATURE].split(" ")) == 2
    for secret in (SECRET, OTHER):
        Webhook(secret).verify(BODY, headers)
        assert verify_standard(secret, BODY, headers) and verify(secret, BODY, headers[SIGNATURE_HEADER])
    third = "whsec_" + base64.b64encode(bytes(40)).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(third).verify(BODY, headers)
    assert not verify_standard(third, BODY, headers)


@pytest.mark.parametrize(
    "change",
    [
        {WEBHOOK_ID: "evt_other_1"},
        {WEBHOOK_TIMESTAMP: "1700000001"},
        {WEBHOOK_SIGNATURE: "v1,AAAA"},
        {WEBHOOK_SIGNATURE: "v2,abc"},
        {WEBHOOK_SIGNATURE: "garbage"},
        {WEBHOOK_TIMESTAMP: "soon"},
        {WEBHOOK_ID: ""},
    ],
)
def test_tampered_standard_headers_fail(change):
    headers = signature_headers([SECRET], EVENT, 1_700_000_000, BODY)
    assert verify_standard(SECRET, BODY, headers, now=1_700_000_000)
    assert not verify_standard(SECRET, BODY, {**headers, **change}, now=1_700_000_000)


def test_the_timestamp_tolerance_holds_for_standard_headers():
    headers = signature_headers([SECRET], EVENT, 1_700_000_000, BODY)
    assert not verify_standard(SECRET, BODY, headers, now=1_700_000_301)
    assert verify_standard(SECRET, BODY, headers, now=1_700_000_299)


def test_an_event_id_with_a_dot_is_never_signed():
    with pytest.raises(ValueError, match=r"'\.'"):
        standard_signature([SECRET], "evt.1", 1, BODY)


def test_the_previous_secret_signs_until_its_end():
    end = datetime(2026, 7, 1, tzinfo=UTC)
    secrets = WebhookSecrets(current=SECRET, previous=OTHER, previous_until=end)
    assert secrets.signing(datetime(2026, 6, 30, tzinfo=UTC)) == [SECRET, OTHER]
    assert secrets.signing(end) == [SECRET]
    assert WebhookSecrets(current=SECRET, previous=OTHER).signing(end) == [SECRET, OTHER]  # no end given
    assert WebhookSecrets(current=SECRET, previous=SECRET).signing(end) == [SECRET]
    assert WebhookSecrets(current=None, previous=OTHER).signing(end) == []  # never signed by the old one alone


def test_tenant_secrets_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.setenv("NEW_SECRET", SECRET)
    monkeypatch.setenv("OLD_SECRET", "whsec_bad")
    config, _ = parse_config(
        {
            "tenants": {
                "a": {
                    "webhook_secret_env": "NEW_SECRET",
                    "previous_webhook_secret_env": "OLD_SECRET",
                    "previous_webhook_secret_until": "2026-07-01T00:00:00Z",
                }
            }
        }
    )
    with pytest.raises(ConfigError, match="previous webhook secret") as caught:
        config.tenants["a"].webhook_secrets()
    assert "whsec_bad" not in str(caught.value)
    monkeypatch.setenv("OLD_SECRET", OTHER)
    secrets = config.tenants["a"].webhook_secrets()
    assert secrets.signing(datetime(2026, 1, 1, tzinfo=UTC)) == [SECRET, OTHER]


def test_gateway_check_warns_when_the_previous_secret_of_a_rotation_is_unset(monkeypatch):
    monkeypatch.setenv("NEW_SECRET", SECRET)
    monkeypatch.delenv("OLD_SECRET", raising=False)
    config, settings = parse_config(
        {
            "tenants": {
                "a": {
                    "keys": ["key-of-a-123"],
                    "webhook_secret_env": "NEW_SECRET",
                    "previous_webhook_secret_env": "OLD_SECRET",
                }
            }
        }
    )
    [finding] = [f for f in findings(config, settings) if f.key.startswith("tenants.")]
    assert (finding.level, finding.env) == ("warning", "OLD_SECRET")
    assert finding.key == "tenants.a.previous_webhook_secret_env"
    assert "signed with the current secret only" in finding.message
    monkeypatch.setenv("OLD_SECRET", OTHER)
    assert [f for f in findings(config, settings) if f.key.startswith("tenants.")] == []
