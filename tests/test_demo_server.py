"""`gateway serve --demo` as a user runs it (the `make run` command): what it prints, and
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
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
