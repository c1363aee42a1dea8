"""A resolver answering from a table, for tests of webhook URLs (SSRF rules, DNS rebinding) without a network.

    dns = FakeResolver({"hooks.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})
    app = create_app(config, settings, state_dir=..., resolver=dns)
    dns.answers["hooks.test"] = [["127.0.0.1"], ["169.254.169.254"]]   # one answer per lookup: a rebinding

It has the shape of aiohttp's resolvers (`resolve(host, port, family)`, `close()`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

from aiohttp.abc import ResolveResult

#: a name's addresses, or a list of successive answers (the last one repeats)
Answer = Sequence[str] | Sequence[Sequence[str]]


class FakeResolver:
    """Resolves names from `answers` (an unknown name does not resolve); every lookup is recorded in `lookups`."""

    def __init__(self, answers: Mapping[str, Answer] | Sequence[str] = ()) -> None:
        #: with a plain list of addresses, every name resolves to them (an attacker's DNS)
        self.everything: list[str] | None = list(answers) if not isinstance(answers, Mapping) else None
        self.answers: dict[str, Answer] = dict(answers) if isinstance(answers, Mapping) else {}
        self.lookups: list[str] = []

    def _addresses(self, host: str) -> list[str]:
        if self.everything is not None:
            return self.everything
        answer = self.answers.get(host)
        if answer is None:
            raise OSError(f"{host} does not resolve (FakeResolver)")
        if answer and not isinstance(answer[0], str):
            seen = sum(1 for name in self.lookups if name == host) - 1
            return list(answer[min(seen, len(answer) - 1)])
        return [str(a) for a in answer]

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        self.lookups.append(host)
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in self._addresses(host)
        ]

    async def close(self) -> None:
        return None
