"""The testing kit's cassette filter (gateway.testing.cassettes.vcr_config): per-job secrets a vendor hands out
in bodies are replaced wherever they appear, in that body and in every later request and response."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from gateway.testing.cassettes import assert_no_secret_in, redacted, vcr_config


def _request(uri: str, body: object) -> SimpleNamespace:
    return SimpleNamespace(uri=uri, path=uri.split("://", 1)[-1].partition("/")[2], headers={}, body=body)


def _response(body: bytes, headers: dict | None = None) -> dict:
    return {"body": {"string": body}, "headers": headers or {}}


def test_a_secret_field_is_redacted_and_learned_for_later_traffic():
    config = vcr_config(["vendor-key-1"], secret_fields={"document_key"}, auth_headers=["X-Vendor-Key"])
    assert ("x-vendor-key", None) in config["filter_headers"]
    created = config["before_record_response"](_response(b'{"document_id": "d1", "document_key": "K-991"}'))
    assert json.loads(created["body"]["string"]) == {"document_id": "d1", "document_key": redacted("document_key")}
    # the vendor wants the key back: in a JSON body, a form body, a URL
    status = config["before_record_request"](_request("http://v/doc/d1", {"document_key": "K-991"}))
    assert json.loads(status.body) == {"document_key": "redacted-document_key"}
    form = config["before_record_request"](_request("http://v/doc/d1/result?key=K-991", b"document_key=K-991"))
    assert b"K-991" not in form.body and "K-991" not in form.uri
    echoed = config["before_record_response"](_response(b"key K-991 expired", {"X-Vendor-Key": ["vendor-key-1"]}))
    assert echoed["body"]["string"] == b"key <redacted> expired" and echoed["headers"] == {}


def test_nested_and_listed_secret_fields_are_redacted():
    config = vcr_config([], secret_fields={"token"})
    body = {"jobs": [{"id": 1, "token": "t-1"}, {"id": 2, "meta": {"token": "t-2"}}], "token": 7}
    out = json.loads(config["before_record_response"](_response(json.dumps(body).encode()))["body"]["string"])
    assert out == {"jobs": [{"id": 1, "token": "redacted-token"}, {"id": 2, "meta": {"token": "redacted-token"}}],
                   "token": 7}  # fmt: skip


def test_the_check_finds_a_private_field_that_was_not_redacted(tmp_path):
    (tmp_path / "ok.yaml").write_text('string: \'{"document_key": "redacted-document_key"}\'\n')
    assert assert_no_secret_in(tmp_path, [], secret_fields={"document_key"}) == 1
    (tmp_path / "leak.yaml").write_text('body: "{\\"document_key\\": \\"K-991\\"}"\n')
    with pytest.raises(AssertionError, match="private field 'document_key'"):
        assert_no_secret_in(tmp_path, [], secret_fields={"document_key"})
