"""Operators are told what is missing: `gateway check --config FILE` names every unset environment variable the
configuration refers to and what it disables (exit 1 when something needed is missing, 2 when the file is
invalid), and `gateway serve` warns about the same at start."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
NAMED = {
    "DATAFOLD_API_KEY": "needed",
    "CAMB_API_KEY": "needed",
    "SEGMENT_QA_API_KEY": "needed",
    "ACME_WEBHOOK_SECRET": "needed",
    "ACME_GATEWAY_KEY": "warning",  # acme has another key in the file
    "GATEWAY_OPERATOR_KEY": "warning",
}


def _env(**set_vars: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NAMED}
    return {**env, **set_vars}


def _gateway(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def test_check_names_each_unset_variable_and_what_it_disables() -> None:
    out = _gateway("check", "--config", str(EXAMPLE), env=_env())
    assert out.returncode == 1, out.stdout + out.stderr
    for env, level in NAMED.items():
        line = next(line for line in out.stdout.splitlines() if f"${env} " in line)
        assert line.startswith(level), line
    assert re.search(r"\$CAMB_API_KEY is not set: requests to CAMB\.AI carry no key", out.stdout)
    assert "acme's webhooks are held" in out.stdout and "cannot open the dashboard" in out.stdout
    assert "4 needed setting(s) missing, 2 warning(s)" in out.stdout


def test_check_passes_when_everything_needed_is_set() -> None:
    out = _gateway("check", "--config", str(EXAMPLE), env=_env(**{k: f"value-of-{k}" for k in NAMED}))
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().endswith("ready")


def test_check_refuses_an_invalid_file(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n")
    out = _gateway("check", "--config", str(bad), env=_env())
    assert out.returncode == 2 and "server.port" in out.stderr


def test_serve_warns_at_start_about_each_unset_variable(tmp_path) -> None:
    log = tmp_path / "serve.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--config", str(EXAMPLE), "--port", "0"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 30
        while "GATEWAY_OPERATOR_KEY" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert "gateway listening on http://127.0.0.1:" in text
    for env in NAMED:
        assert re.search(rf"WARNING gateway\.config .*\${env} is not set", text), env
