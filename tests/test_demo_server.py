"""`gateway serve --demo` as a user runs it (the `make run` command): what it prints, and
a bounded schemathesis run that must find no 5xx and no response breaking the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from gateway.server.run import DEMO_WEBHOOK_SECRET
from support.processes import ROOT, start_gateway
from support.waiting import wait_until

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    env = {**os.environ, "TMPDIR": str(log.parent)}
    server = asyncio.run(start_gateway(["--demo", "--step", "1"], log, env=env))
    yield server.url, log
    server.stop()


def test_demo_prints_urls_and_keys(demo_server):
    url, log = demo_server
    text = asyncio.run(wait_until(lambda: "try: curl" in log.read_text() and log.read_text(), what="the last line"))
    assert f"gateway listening on {url}" in text
    assert "key demo-key," in text and "key demo-key-b," in text and DEMO_WEBHOOK_SECRET in text
    assert "simulators: http://127.0.0.1:" in text
    assert f"dashboard: {url}/ui" in text and "operator key (dashboard): demo-operator-key" in text


def test_openapi_document_is_valid_openapi_3_1(demo_server):
    url, _ = demo_server
    doc = json.loads(urllib.request.urlopen(url + "/openapi.json", timeout=5).read())
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    expected = {
        "/v1/providers",
        "/v1/jobs",
        "/v1/jobs/attach",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/events",
        "/v1/jobs/{job_id}/transitions",
        "/v1/jobs/{job_id}/result",
        "/v1/jobs/{job_id}/artifact",
        "/v1/jobs/{job_id}/cancel",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/operator/jobs",
        "/v1/operator/jobs/{job_id}",
        "/v1/operator/events",
        "/v1/operator/providers",
        "/ui",
        "/ui/{asset}",
    }
    assert expected <= set(doc["paths"])


def test_schemathesis_finds_no_5xx_and_no_schema_violation(demo_server):
    url, _ = demo_server
    examples = os.environ.get("SCHEMATHESIS_EXAMPLES", "15")
    out = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{url}/openapi.json",
            "--max-examples",
            examples,
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "-H",
            "Authorization: Bearer demo-key",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
            # the tenant event stream never ends by itself (a request/response fuzzer can only time out on it);
            # its parameters and answers are tested in tests/api/test_api_events.py
            "--exclude-path",
            "/v1/events",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def _http(url, method="GET", body=None, key="demo-key"):
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


def test_the_demo_serves_an_installed_third_party_plugin_with_no_core_change(demo_server):
    """`make test` installs the example plugin (examples/azure_batch): the demo configures it from its own
    demo settings and simulator, and serves its jobs end to end, cancel included."""
    url, log = demo_server
    installed = subprocess.run(
        [sys.executable, "-m", "gateway", "providers", "--json"], capture_output=True, text=True, check=True
    )
    if "azure_batch" not in {p["name"] for p in json.loads(installed.stdout)["providers"]}:
        pytest.skip("the example plugin is not installed")
    assert "azure_batch" in next(line for line in log.read_text().splitlines() if line.startswith("providers:"))
    _, listed = _http(url + "/v1/providers")
    assert "azure_batch" in {p["name"] for p in listed["providers"]}
    text = {"kind": "text", "source_language": "en", "target_language": "fr", "texts": ["Hello from a plugin"]}
    status, job = _http(url + "/v1/jobs", "POST", {"provider": "azure_batch", "input": text})
    assert status == 201 and set(job["vendor_ref"]) == {"batch_id"}
    deadline = time.monotonic() + 30
    while not job["terminal"]:
        assert time.monotonic() < deadline, job
        _, job = _http(f"{url}/v1/jobs/{job['id']}?wait=5&version={job['version']}")
    assert job["state"] == "succeeded", job
    _, result = _http(f"{url}/v1/jobs/{job['id']}/result")
    assert [o["target"] for o in result["outputs"]] == ["[fr] Hello from a plugin"]
    _, other = _http(url + "/v1/jobs", "POST", {"provider": "azure_batch", "input": text})
    status, cancelled = _http(f"{url}/v1/jobs/{other['id']}/cancel", "POST")
    assert status == 202 and cancelled["state"] in ("running", "cancelled"), cancelled
    while not cancelled["terminal"]:
        assert time.monotonic() < deadline, cancelled
        _, cancelled = _http(f"{url}/v1/jobs/{other['id']}?wait=5&version={cancelled['version']}")
    assert cancelled["state"] == "cancelled"
