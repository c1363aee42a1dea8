"""Every built-in provider against its cassettes: lifecycle, typed errors and faults, replayed with no network.

Re-record from the simulators with `make cassettes`."""

from __future__ import annotations

import pytest

from gateway.testing import conformance
from gateway.testing.cassettes import SIM_HOST, assert_no_secret_in, recording
from support.cases import load_case
from support.constants import CASSETTE_SECRETS

NAMES = ["datafold", "camb", "segment_qa", "doc_translator"]


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


@pytest.fixture
def default_cassette_name(request, name):
    return f"{name}/{request.node.originalname.removeprefix('test_cassette_')}"


def _connect(providers, name, session, base, monkeypatch, key):
    provider = providers[name]
    env = f"GW_CASSETTE_{name.upper()}_KEY"
    monkeypatch.setenv(env, key)
    config = provider.config_model.model_validate(
        {"base_url": base + provider.sim_prefix, "api_key_env": env, "timeout_s": 10}
    )
    return provider, provider.connect(session, config)


@pytest.fixture
def kit(providers, name, vendor_session, sim_base_url, monkeypatch):
    provider, conn = _connect(providers, name, vendor_session, sim_base_url, monkeypatch, CASSETTE_SECRETS[name])
    control = conformance.SimControl(vendor_session, sim_base_url + provider.sim_prefix if recording() else None)
    return provider, load_case(name), conn, control


@pytest.mark.vcr
async def test_cassette_lifecycle(kit):
    provider, case, conn, control = kit
    _ref, seen, result = await conformance.scenario_lifecycle(provider, case, conn, control)
    assert [s.state for s in seen] == [expected for _, expected in case.status_patches]
    assert {s.vendor_status for s in seen} >= set(provider.mapping)
    assert result.vendor or result.outputs or result.has_artifact


@pytest.mark.vcr
async def test_cassette_auth_failure(providers, name, vendor_session, sim_base_url, monkeypatch):
    case = load_case(name)
    if not case.has_auth:
        pytest.skip(f"{name} has no authentication")
    provider, bad = _connect(providers, name, vendor_session, sim_base_url, monkeypatch, "invalid")
    await conformance.scenario_auth_failure(provider, case, bad)


@pytest.mark.vcr
async def test_cassette_not_found(kit):
    provider, case, conn, _ = kit
    await conformance.scenario_not_found(provider, case, conn)


@pytest.mark.vcr
async def test_cassette_validation_error(kit):
    provider, case, conn, _ = kit
    await conformance.scenario_validation(provider, case, conn)


@pytest.mark.vcr
async def test_cassette_faults(kit):
    provider, case, conn, control = kit
    await conformance.scenario_faults(provider, case, conn, control)


def test_mapping_is_total(providers, name):
    conformance.check_mapping_total(providers[name])


def test_no_cassette_holds_a_secret(request):
    folder = request.config.rootpath / "cassettes"
    checked = assert_no_secret_in(folder, CASSETTE_SECRETS.values())
    assert checked >= 4 * 5 - 1  # every provider's scenarios (the document translator has no auth cassette)


def test_cassettes_record_simulator_traffic_under_a_non_localhost_name(request):
    for path in (request.config.rootpath / "cassettes").rglob("*.yaml"):
        text = path.read_text()
        assert f"http://{SIM_HOST}:" in text, path
        assert "127.0.0.1" not in text and "localhost" not in text, path


def test_secret_scrubbing_catches_a_leak(tmp_path):
    (tmp_path / "leak.yaml").write_text("interactions:\n- request:\n    headers:\n      x-api-key:\n      - k\n")
    with pytest.raises(AssertionError, match="x-api-key"):
        assert_no_secret_in(tmp_path, ["unrelated"])
    (tmp_path / "leak.yaml").write_text("body: cassette-secret-camb-7f3a9c")
    with pytest.raises(AssertionError, match="secret"):
        assert_no_secret_in(tmp_path, CASSETTE_SECRETS.values())


def _shape(path):
    """What a cassette says, less what changes between recordings (ids, ports, dates)."""
    import re

    import yaml

    data = yaml.safe_load(path.read_text())
    shape = []
    for item in data["interactions"]:
        uri = re.sub(r"^http://[^/]+", "", item["request"]["uri"])
        uri = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\b\d{4,}\b", "<id>", uri)
        shape.append((item["request"]["method"], uri, item["response"]["status"]["code"]))
    return shape


def test_re_recording_from_the_simulators_reproduces_equivalent_cassettes(request, tmp_path):
    import os
    import subprocess
    import sys

    root = request.config.rootpath
    env = {**os.environ, "GATEWAY_RECORD": "1", "GATEWAY_CASSETTE_DIR": str(tmp_path)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/providers/test_cassettes.py",
            "-k",
            "test_cassette_",
            "--record-mode=all",
            "-p",
            "no:xdist",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]
    committed = sorted(p.relative_to(root / "cassettes") for p in (root / "cassettes").rglob("*.yaml"))
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.yaml"))
    assert fresh == committed
    for rel in committed:
        assert _shape(tmp_path / rel) == _shape(root / "cassettes" / rel), rel
