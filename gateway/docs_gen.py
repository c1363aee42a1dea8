"""Documentation generated from the code, so that it cannot drift: each provider's status mapping table, from
the provider's own `mapping` and `mapping_notes` (`gateway providers --installed --markdown`), and the README
sections that hold generated text between markers (`make docs` rewrites them; a test fails when they drift)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.provider import Provider


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def mapping_markdown(providers: Mapping[str, Provider]) -> str:
    """One table per provider: vendor status, canonical state, notes."""
    blocks = []
    for name, provider in sorted(providers.items()):
        rows = [
            f"| `{status}` | `{state}` | {_cell(provider.mapping_notes.get(status, ''))} |"
            for status, state in provider.mapping.items()
        ]
        blocks.append(
            "\n".join(
                [
                    f"**{provider.display_name}** (`{name}`)",
                    "",
                    "| vendor status | state | notes |",
                    "|---|---|---|",
                    *rows,
                ]
            )
        )
    return "\n\n".join(blocks)


def section_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated:{name} begin[^>]*-->\n)(.*?)(\n<!-- generated:{name} end -->)", re.S)


def generated_section(text: str, name: str) -> str | None:
    """The text between the markers of the named generated section, or None when there are no markers."""
    found = section_pattern(name).search(text)
    return None if found is None else found.group(2)


def with_section(text: str, name: str, content: str) -> str:
    """`text` with the named generated section replaced by `content` (ValueError when the markers are missing)."""
    pattern = section_pattern(name)
    if not pattern.search(text):
        raise ValueError(f"no <!-- generated:{name} begin --> ... <!-- generated:{name} end --> markers")
    return pattern.sub(lambda m: m.group(1) + content + m.group(3), text, count=1)
