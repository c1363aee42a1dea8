"""Config loading: the example file is valid, and each problem names the file, the key and what is wrong."""

import hashlib
from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_loads_with_every_provider_validated():
    config, settings = load_config(ROOT / "config.example.toml")
    assert set(settings) == {"datafold", "camb", "segment_qa", "doc_translator"}
    assert settings["camb"].poll.max_s == 10.0
    assert settings["datafold"].project_id == 1234
    assert config.routes["text"].providers == ["segment_qa", "camb"]


def _write(tmp_path, text):
    path = tmp_path / "gw.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[server\nport = 1", "not valid TOML"),
        ("[server]\nport = 'eighty'", "server.port: Input should be a valid integer"),
        ("[server]\nprot = 80", "server.prot: Extra inputs are not permitted"),
        ("[providers.camb]\nbase_url = 'ftp://x'", "providers.camb.base_url: Value error, must start with http"),
        ("[providers.camb]\nbase_url = 'http://x'\nsecret = 'k'", "providers.camb.secret: Extra inputs"),
        ("[providers.nosuch]\nbase_url = 'http://x'", "providers.nosuch: no installed provider"),
        ("[routes.text]\nproviders = ['camb']", "provider 'camb' is not configured"),
        ("[routes.text]\nproviders = []", "routes.text.providers: List should have at least 1 item"),
        ("[tenants.a]\nkeys = ['sha256:xyz']", "tenants.a.keys: Value error, a sha256: key must be followed by 64"),
        ("[providers.camb]\nbase_url = 'http://x'\n[providers.camb.poll]\nmax_s = -1", "providers.camb.poll.max_s"),
    ],
)
def test_invalid_config_fails_naming_file_key_and_problem(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path) + ": ")
    assert expected in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_tenant_keys_plain_digest_and_env(monkeypatch):
    digest = hashlib.sha256(b"alpha-key-123").hexdigest()
    monkeypatch.setenv("BETA_KEY", "beta-key-456")
    config, _ = parse_config(
        {"tenants": {"a": {"keys": [f"sha256:{digest}"]}, "b": {"keys": ["plain-key-789"], "key_envs": ["BETA_KEY"]}}}
    )
    assert config.tenant_for_key("alpha-key-123") == "a"
    assert config.tenant_for_key("plain-key-789") == "b"
    assert config.tenant_for_key("beta-key-456") == "b"
    assert config.tenant_for_key("alpha-key-12") is None
    assert config.tenant_for_key("") is None


def test_vendor_key_is_read_from_the_environment_not_the_file(monkeypatch):
    _, settings = parse_config({"providers": {"camb": {"base_url": "http://x", "api_key_env": "CAMB_TEST_KEY"}}})
    assert settings["camb"].api_key() is None
    monkeypatch.setenv("CAMB_TEST_KEY", "k-123")
    assert settings["camb"].api_key() == "k-123"
