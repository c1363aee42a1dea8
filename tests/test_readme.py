"""The README cannot drift from the code: its mapping tables are the providers' own (generated), its
configuration reference names every configuration key, every `gateway` command it shows parses with the real
command line, and the documents it links exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from pydantic import BaseModel

from gateway.cli import _parser
from gateway.config import GatewayConfig, OperatorConfig, RouteConfig, TenantConfig
from gateway.docs_gen import generated_section, mapping_markdown, with_section
from gateway.plugins import builtin_providers
from gateway.provider import PollSettings, ProviderConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_mapping_tables_are_the_providers_own() -> None:
    expected = mapping_markdown(builtin_providers())  # the gateway's own, whatever plugins are installed beside
    assert generated_section(README, "mapping") == expected, "README drifted: run make docs"


def test_a_drifted_table_is_noticed() -> None:
    drifted = README.replace("| `PENDING` | `running` |", "| `PENDING` | `queued` |")
    assert drifted != README
    assert generated_section(drifted, "mapping") != mapping_markdown(builtin_providers())
    assert generated_section(with_section(drifted, "mapping", mapping_markdown(builtin_providers())), "mapping") == (
        mapping_markdown(builtin_providers())
    )


def _keys(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields)


@pytest.mark.parametrize(
    ("table", "model"),
    [
        ("server", GatewayConfig.model_fields["server"].annotation),
        ("store", GatewayConfig.model_fields["store"].annotation),
        ("webhooks", GatewayConfig.model_fields["webhooks"].annotation),
        ("tenants.NAME", TenantConfig),
        ("operator", OperatorConfig),
        ("routes.NAME", RouteConfig),
        ("providers.NAME", ProviderConfig),
        ("providers.NAME.poll", PollSettings),
    ],
)
def test_the_configuration_reference_names_every_key(table: str, model: type[BaseModel]) -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| `[{table}]")]
    named = {key for row in rows for key in re.findall(r"`(\w+)`", row.split("|")[1].replace(f"[{table}] ", ""))}
    missing = _keys(model) - named - ({"poll"} if table == "providers.NAME" else set())
    assert not missing, f"README's configuration reference lacks [{table}] {sorted(missing)}"


def _commands() -> list[list[str]]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            for part in re.split(r"&&|;", line):
                words = shlex.split(part.strip())
                if words and words[0] in ("gateway", ".venv/bin/gateway"):
                    found.append(words[1:])
    return found


def test_every_gateway_command_in_the_readme_parses() -> None:
    commands = _commands()
    assert len(commands) >= 8
    parser = _parser()
    for words in commands:
        args, extra = parser.parse_known_args(words)
        assert not [e for e in extra if e.startswith("--")], words
        assert args.command


def test_the_linked_documents_exist() -> None:
    for target in re.findall(r"\]\((docs/[^)]+)\)", README):
        assert (ROOT / target).is_file(), target
    for name in ("plugins.md", "deploy.md", "benchmarks.md", "contract.md"):
        assert f"](docs/{name})" in README
