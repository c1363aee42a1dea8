"""The gateway's Prometheus metrics on `prometheus-client`: one registry per app (tests build many apps in one
process), the metric names of the contract, and a text exposition that prints whole numbers as integers.

prometheus-client does the bookkeeping (thread-safe values, label children, histogram buckets, collectors); its
own text exposition writes counters of a million and more in exponent form (`1.234567e+06`), which the issue
forbids, so `render` writes the samples it collects in the same text format with integral values as integers.

Metrics (see docs/benchmarks.md and docs/contract.md):
- gateway_http_requests_total{method,route,status}: HTTP requests answered;
- gateway_upstream_requests_total{operation,outcome,provider}: vendor requests by operation and outcome;
- gateway_upstream_latency_seconds{provider}: vendor request latency (histogram);
- gateway_unknown_vendor_status_total{provider,vendor_status}: vendor statuses mapped to `unknown`;
- gateway_terminal_anomalies_total{provider}: vendors reporting another state after a terminal one;
- gateway_transitions_total{provider,state}: job transitions recorded;
- gateway_webhook_deliveries_total{outcome}: webhook delivery attempts;
- gateway_jobs{state}: jobs by canonical state (read from the store at scrape time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as _Counter
from prometheus_client import Histogram as _Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


class Counter:
    """A labelled counter; `inc(**labels)` keeps each label set's child, so a hot path costs a dict lookup."""

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str, labelnames: Iterable[str]) -> None:
        self.name = name
        self.labelnames = tuple(sorted(labelnames))
        self._metric = _Counter(name, help_text, self.labelnames, registry=registry)
        self._registry = registry
        self._children: dict[tuple[str, ...], _Counter] = {}

    def child(self, *values: str) -> _Counter:
        """The counter of these label values (in `labelnames` order)."""
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self._metric.labels(*values)
        return found

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        self.child(*(str(labels[name]) for name in self.labelnames)).inc(amount)

    def get(self, **labels: str) -> float:
        value = self._registry.get_sample_value(self.name, {k: str(v) for k, v in labels.items()})
        return value or 0.0


class Histogram:
    def __init__(
        self,
        registry: CollectorRegistry,
        name: str,
        help_text: str,
        labelnames: Iterable[str],
        buckets: tuple[float, ...],
    ) -> None:
        self.labelnames = tuple(sorted(labelnames))
        self._metric = _Histogram(name, help_text, self.labelnames, registry=registry, buckets=buckets)
        self._children: dict[tuple[str, ...], _Histogram] = {}

    def observe(self, value: float, **labels: str) -> None:
        values = tuple(str(labels[name]) for name in self.labelnames)
        found = self._children.get(values)
        if found is None:
            found = self._children[values] = self._metric.labels(*values)
        found.observe(value)


class LoopCounter(Collector):
    """A labelled counter for the hottest path (one increment per HTTP request): a plain dict of counts, read by
    prometheus-client at scrape time. Increment it from the event loop thread only (no lock is taken)."""

    def __init__(self, registry: CollectorRegistry, name: str, help_text: str, labelnames: Iterable[str]) -> None:
        self.name, self.help, self.labelnames = name, help_text, tuple(labelnames)
        self.counts: dict[tuple[str, ...], int] = {}
        registry.register(self)

    def inc(self, *values: str) -> None:
        """Count one, for these label values (in `labelnames` order)."""
        counts = self.counts
        counts[values] = counts.get(values, 0) + 1

    def get(self, *values: str) -> int:
        return self.counts.get(values, 0)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name.removesuffix("_total"), self.help, labels=self.labelnames)
        for values, count in sorted(self.counts.items()):
            family.add_metric(list(values), count)
        yield family


class _CallbackGauge(Collector):
    """A gauge read from a callback at scrape time: label tuples -> value."""

    def __init__(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]) -> None:
        self.name, self.help, self.read = name, help_text, read

    def collect(self) -> Iterator[Metric]:
        values = self.read()
        names = sorted({k for labels in values for k, _ in labels})
        family = GaugeMetricFamily(self.name, self.help, labels=names)
        for labels, value in sorted(values.items()):
            found = dict(labels)
            family.add_metric([found.get(n, "") for n in names], value)
        yield family


class Metrics:
    """The gateway's metrics (contract: requests, upstream requests and latency, jobs by state, unknown statuses)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = LoopCounter(
            r, "gateway_http_requests_total", "HTTP requests by route and status.", ("method", "route", "status")
        )
        self.upstream = Counter(
            r,
            "gateway_upstream_requests_total",
            "Vendor requests by provider, operation, outcome.",
            ("provider", "operation", "outcome"),
        )
        self.upstream_latency = Histogram(
            r, "gateway_upstream_latency_seconds", "Vendor request latency.", ("provider",), LATENCY_BUCKETS
        )
        self.unknown_status = Counter(
            r,
            "gateway_unknown_vendor_status_total",
            "Vendor statuses mapped to unknown.",
            ("provider", "vendor_status"),
        )
        self.anomalies = Counter(
            r, "gateway_terminal_anomalies_total", "Vendors reporting non-terminal after terminal.", ("provider",)
        )
        self.transitions = Counter(
            r, "gateway_transitions_total", "Job transitions recorded, by provider and state.", ("provider", "state")
        )
        self.webhooks = Counter(
            r, "gateway_webhook_deliveries_total", "Webhook delivery attempts by outcome.", ("outcome",)
        )
        # the usage ledger (contract 4.3): vendor attempts as they end, and what their vendors reported
        self.usage_attempts = Counter(
            r, "gateway_usage_attempts_total", "Vendor attempts ended, by how.", ("provider", "state", "shadow")
        )
        self.usage_cost = Counter(
            r, "gateway_usage_cost_total", "Vendor cost reported, in the currency's unit.", ("provider", "currency")
        )
        self.usage_tokens = Counter(
            r, "gateway_usage_tokens_total", "Tokens the vendors reported.", ("provider", "direction")
        )
        self.usage_units = Counter(
            r, "gateway_usage_units_total", "Units (characters, words, ...) the vendors counted.", ("provider", "unit")
        )
        self.webhook_latency = Histogram(
            r,
            "gateway_webhook_attempt_seconds",
            "Webhook delivery attempt duration, by outcome.",
            ("outcome",),
            LATENCY_BUCKETS,
        )
        self.webhook_dead_letters = Counter(
            r,
            "gateway_webhook_dead_letters_total",
            "Webhook events given up on (dead-lettered), by reason.",
            ("reason",),
        )

    def gauge(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]]) -> None:
        self.registry.register(_CallbackGauge(name, help_text, read))

    def render(self) -> str:
        """The Prometheus text format (0.0.4) of every metric; whole numbers are written as integers."""
        lines: list[str] = []
        for family in self.registry.collect():
            name = family.name + "_total" if family.type == "counter" else family.name
            lines.append(f"# HELP {name} {_escape_help(family.documentation)}")
            lines.append(f"# TYPE {name} {family.type}")
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sample.labels.items())
                lines.append(
                    f"{sample.name}{{{labels}}} {number(sample.value)}"
                    if labels
                    else f"{sample.name} {number(sample.value)}"
                )
        return "\n".join(lines) + "\n"


def number(value: float) -> str:
    """A sample value: whole numbers as integers (never exponent form, never rounded), others as Python prints
    them, and the text format's +Inf, -Inf and NaN."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
