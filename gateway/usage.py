"""The usage report of `GET /v1/usage`: a tenant's ledger entries (one per job and vendor attempt) totalled per
provider, route or day, so a team can compare vendors on its own traffic.

Per group: attempts and jobs by how they ended (a job counts once, under the group of its last attempt; an attempt
the job failed over from counts as a `failed` attempt of its own provider), what the vendors reported (tokens,
money per currency summed exactly, units such as characters or segments), and the duration of the attempts from
submit to end, as percentiles per provider. Shadow runs are groups of their own (`shadow: true`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from gateway.states import TERMINAL_STATES, State
from gateway.store.ledger import from_micros
from gateway.store.records import UsageEntry

#: the percentiles of attempt durations in a report
PERCENTILES = (50, 90, 99)


class GroupBy(StrEnum):
    PROVIDER = "provider"
    ROUTE = "route"
    DAY = "day"


def _ended_states() -> dict[str, int]:
    return {state.value: 0 for state in State if state in TERMINAL_STATES}


def percentile(sorted_values: list[float], p: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def durations(values: Iterable[float]) -> dict[str, Any]:
    """count, p50, p90, p99 and max of attempt durations, in seconds (rounded to the millisecond)."""
    ordered = sorted(values)
    out: dict[str, Any] = {"count": len(ordered)}
    for p in PERCENTILES:
        out[f"p{p}_s"] = round(percentile(ordered, p), 3)
    out["max_s"] = round(ordered[-1], 3)
    return out


class Totals:
    """What the vendors reported for a set of attempts, summed (money exactly, per currency)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost: dict[str, int] = {}
        self.units: dict[str, float] = {}
        self.reported = 0

    def add(self, entry: UsageEntry) -> None:
        self.input_tokens += entry.input_tokens or 0
        self.output_tokens += entry.output_tokens or 0
        if entry.cost_micros is not None and entry.currency:
            self.cost[entry.currency] = self.cost.get(entry.currency, 0) + entry.cost_micros
        for unit, quantity in entry.units.items():
            self.units[unit] = self.units.get(unit, 0.0) + quantity
        if entry.input_tokens is not None or entry.output_tokens is not None or entry.cost_micros or entry.units:
            self.reported += 1

    def body(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": {currency: money(micros) for currency, micros in sorted(self.cost.items())},
            "units": {unit: _number(q) for unit, q in sorted(self.units.items())},
            "reported": self.reported,
        }


def money(micros: int) -> float:
    """An amount in millionths as a JSON number (exact to the millionth)."""
    return float(from_micros(micros).normalize() if micros else Decimal(0))


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class Group:
    def __init__(self, key: str | None, shadow: bool) -> None:
        self.key = key
        self.shadow = shadow
        self.attempts = _ended_states()
        self.jobs = _ended_states()
        self.totals = Totals()
        self.durations: dict[str, list[float]] = {}

    def add(self, entry: UsageEntry) -> None:
        self.attempts[entry.state.value] = self.attempts.get(entry.state.value, 0) + 1
        if entry.final:
            self.jobs[entry.state.value] = self.jobs.get(entry.state.value, 0) + 1
        self.totals.add(entry)
        self.durations.setdefault(entry.provider, []).append(entry.duration_s)

    def body(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "shadow": self.shadow,
            "attempts": self.attempts,
            "jobs": self.jobs,
            "usage": self.totals.body(),
            "durations": {provider: durations(values) for provider, values in sorted(self.durations.items())},
        }


def group_key(entry: UsageEntry, group_by: GroupBy) -> str | None:
    if group_by is GroupBy.PROVIDER:
        return entry.provider
    if group_by is GroupBy.ROUTE:
        return entry.route
    return entry.finished_at.date().isoformat()


def report(entries: Iterable[UsageEntry], group_by: GroupBy, since: datetime, until: datetime) -> dict[str, Any]:
    """The body of `GET /v1/usage` for the entries of attempts that ended in [since, until)."""
    groups: dict[tuple[str, bool], Group] = {}
    overall = Totals()
    jobs = _ended_states()
    attempts = 0
    for entry in entries:
        key = group_key(entry, group_by)
        group = groups.get((key or "", entry.shadow))
        if group is None:
            group = groups[(key or "", entry.shadow)] = Group(key, entry.shadow)
        group.add(entry)
        overall.add(entry)
        attempts += 1
        if entry.final:
            jobs[entry.state.value] += 1
    return {
        "from": _iso(since),
        "to": _iso(until),
        "group_by": group_by.value,
        "groups": [groups[k].body() for k in sorted(groups)],
        "total": {"attempts": attempts, "jobs": jobs, "usage": overall.body()},
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
