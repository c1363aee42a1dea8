"""The command line: providers listing, --version and --help everywhere."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = "serve simulate check providers submit status wait result artifact list cancel attach".split()


def test_providers_text_shows_each_mapping_table(capsys):
    assert main(["providers"]) == 0
    out = capsys.readouterr().out
    for status, state in (
        ("PENDING", "running"),
        ("needs_confirmation", "action_required"),
        ("dead", "failed"),
        ("completed_with_blocks", "completed_with_issues"),
        ("started", "running"),
    ):
        assert re.search(rf"\n  {status} +-> {state}\b", out), status
    for name in ("datafold", "camb", "segment_qa", "doc_translator"):
        assert f"\n{name}  (" in "\n" + out


def test_providers_json_has_mapping_and_capabilities(capsys):
    assert main(["providers", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in data["providers"]}
    assert by_name["camb"]["mapping"]["TIMEOUT"] == "failed"
    assert by_name["segment_qa"]["mapping"]["failed"] == "queued"
    assert by_name["doc_translator"]["capabilities"]["artifact"] is True
    assert "document" in by_name["doc_translator"]["capabilities"]["input_kinds"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_version_and_help_everywhere(command):
    prefix = [command] if command else []
    for flag, expected in (("--version", f"gateway {__version__}"), ("--help", "usage: gateway")):
        out = subprocess.run(
            [sys.executable, "-m", "gateway", *prefix, flag], capture_output=True, text=True, cwd=ROOT, check=True
        )
        assert expected in out.stdout


def test_client_commands_need_a_key(monkeypatch, capsys):
    monkeypatch.delenv("GATEWAY_URL", raising=False)
    monkeypatch.delenv("GATEWAY_KEY", raising=False)
    assert main(["status", "job_x"]) == 2
    assert "GATEWAY_KEY" in capsys.readouterr().err
