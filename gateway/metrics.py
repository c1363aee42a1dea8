"""A small Prometheus text-format registry: counters, gauges from callbacks, and histograms."""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _fmt(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in items)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(items, escaped, strict=True)) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.values[_labels(labels)] += amount

    def get(self, **labels: str) -> float:
        return self.values.get(_labels(labels), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_fmt(k)} {v:g}" for k, v in sorted(self.values.items())]
        return lines


class Gauge:
    """A gauge read from a callback at scrape time: label dict -> value."""

    def __init__(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]) -> None:
        self.name, self.help, self.read = name, help_text, read

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge"]
        lines += [f"{self.name}{_fmt(k)} {v:g}" for k, v in sorted(self.read().items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        self.counts: dict[Labels, list[int]] = {}
        self.sums: dict[Labels, float] = defaultdict(float)

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        counts = self.counts.setdefault(key, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[key] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f"{self.name}_bucket{_fmt(key, (('le', le),))} {running}")
            lines.append(f"{self.name}_sum{_fmt(key)} {self.sums[key]:g}")
            lines.append(f"{self.name}_count{_fmt(key)} {running}")
        return lines


class Metrics:
    """The gateway's metrics (contract: requests, upstream requests and latency, jobs by state, unknown statuses)."""

    def __init__(self) -> None:
        self.requests = Counter("gateway_http_requests_total", "HTTP requests by route and status.")
        self.upstream = Counter("gateway_upstream_requests_total", "Vendor requests by provider, operation, outcome.")
        self.upstream_latency = Histogram("gateway_upstream_latency_seconds", "Vendor request latency.")
        self.unknown_status = Counter("gateway_unknown_vendor_status_total", "Vendor statuses mapped to unknown.")
        self.anomalies = Counter("gateway_terminal_anomalies_total", "Vendors reporting non-terminal after terminal.")
        self.transitions = Counter("gateway_transitions_total", "Job transitions recorded, by provider and state.")
        self.webhooks = Counter("gateway_webhook_deliveries_total", "Webhook delivery attempts by outcome.")
        self.gauges: list[Gauge] = []

    def gauge(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]) -> None:
        self.gauges.append(Gauge(name, help_text, read))

    def render(self) -> str:
        lines: list[str] = []
        metrics: tuple[Counter | Histogram | Gauge, ...] = (
            self.requests,
            self.upstream,
            self.upstream_latency,
            self.unknown_status,
            self.anomalies,
            self.transitions,
            self.webhooks,
            *self.gauges,
        )
        for metric in metrics:
            lines += metric.render()
        return "\n".join(lines) + "\n"
