"""`gateway serve --demo` as a user runs it (the `make run` command): the client CLI against it, and
a bounded schemathesis run that must find no 5xx and no response breaking the OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

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
    assert "key demo-key," in text and "key demo-key-b," in text and "demo-webhook-secret" in text
    assert "simulators: http://127.0.0.1:" in text


def _cli(url, *args, key="demo-key"):
    env = {**os.environ, "GATEWAY_URL": url, "GATEWAY_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )


def test_client_commands_submit_wait_status_result(demo_server):
    url, _ = demo_server
    text_input = json.dumps(
        {"kind": "text", "source_language": "en-us", "target_language": "de-de", "texts": ["Hello from the CLI"]}
    )
    out = _cli(url, "submit", "--provider", "camb", "--input", text_input)
    assert out.returncode == 0, out.stderr
    job = json.loads(out.stdout)
    assert job["provider"] == "camb" and job["state"] == "queued"
    waited = _cli(url, "wait", job["id"], "--timeout", "30")
    assert waited.returncode == 0, waited.stderr
    lines = waited.stdout.strip().splitlines()
    assert lines[-1].startswith(f"{job['id']} succeeded")
    assert any(" running " in line for line in lines)  # the live display showed the job on its way
    status = json.loads(_cli(url, "status", job["id"]).stdout)
    assert status["state"] == "succeeded" and status["result_available"] is True
    result = json.loads(_cli(url, "result", job["id"]).stdout)
    assert result["job_id"] == job["id"] and len(result["outputs"]) == 1


def test_client_commands_report_problems(demo_server):
    url, _ = demo_server
    out = _cli(url, "status", "job_000000000000000000000000")
    assert out.returncode == 1 and "HTTP 404 not_found" in out.stderr
    out = _cli(url, "status", "job_000000000000000000000000", key="wrong")
    assert out.returncode == 1 and "HTTP 401 unauthorized" in out.stderr
    out = _cli(url, "submit", "--provider", "camb", "--input", "{nope")
    assert out.returncode == 2 and "not JSON" in out.stderr


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
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
