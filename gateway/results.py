"""Results as readers get them: each text output paired with the source text it translates."""

from __future__ import annotations

from typing import Any


def with_sources(result: dict[str, Any], sources: list[str] | None) -> dict[str, Any]:
    """The stored result with every output that lacks a `source` given the job's source text at its position
    (outputs come back in input order); unchanged when the counts differ or there are no sources."""
    outputs = result.get("outputs")
    if not sources or not isinstance(outputs, list) or len(outputs) != len(sources):
        return result
    paired = [
        {**output, "source": source} if isinstance(output, dict) and output.get("source") is None else output
        for output, source in zip(outputs, sources, strict=True)
    ]
    return {**result, "outputs": paired}
