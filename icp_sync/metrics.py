"""The daemon's Prometheus metrics, in a registry of its own (one per daemon, never global).

Names are a contract (scraped by dashboards and alert rules): ``icp_sync_cycles_total{status}``,
``icp_sync_api_calls_total{crm,endpoint}`` and ``icp_sync_records_written_total{crm}``; the
others (durations, rejects, budget, last success, failures in a row) may grow.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "DaemonMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""


class DaemonMetrics:
    """Counters, gauges and histograms of one daemon, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycles = Counter("icp_sync_cycles", "Sync cycles by outcome.", ["status"], registry=r)
        self.duration = Histogram(
            "icp_sync_cycle_duration_seconds",
            "Wall time of sync cycles.",
            ["kind"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.api_calls = Counter(
            "icp_sync_api_calls", "CRM API calls by endpoint.", ["crm", "endpoint"], registry=r
        )
        self.written = Counter(
            "icp_sync_records_written", "CRM records updated by write-back.", ["crm"], registry=r
        )
        self.rejected = Counter(
            "icp_sync_records_rejected", "Records the CRM refused on write.", ["crm"], registry=r
        )
        self.extracted = Counter(
            "icp_sync_records_read", "Records read from the CRM.", ["crm", "object"], registry=r
        )
        self.budget = Gauge(
            "icp_sync_api_budget_remaining",
            "The org's daily API calls left, as last reported.",
            ["crm"],
            registry=r,
        )
        self.last_success = Gauge(
            "icp_sync_last_success_timestamp_seconds",
            "Unix time of the last successful cycle.",
            registry=r,
        )
        self.failures = Gauge(
            "icp_sync_consecutive_failures", "Failed cycles in a row.", registry=r
        )
        self.leader = Gauge(
            "icp_sync_lease_held", "1 while this daemon holds the single-writer lease.", registry=r
        )
        self.after_sync_errors = Counter(
            "icp_sync_after_sync_errors", "After-sync hooks that failed.", ["hook"], registry=r
        )
        for status in ("ok", "failed", "standby", "interrupted", "budget_exhausted"):
            self.cycles.labels(status=status)

    def record_cycle(
        self,
        *,
        status: str,
        kind: str,
        duration_s: float,
        crm: str = "",
        api_by_endpoint: Mapping[str, int] | None = None,
        written: int = 0,
        rejected: int = 0,
        read: Mapping[str, int] | None = None,
        budget_remaining: int | None = None,
    ) -> None:
        """Count one cycle and what it did."""
        self.cycles.labels(status=status).inc()
        self.duration.labels(kind=kind).observe(duration_s)
        if not crm:
            return
        for endpoint, calls in (api_by_endpoint or {}).items():
            self.api_calls.labels(crm=crm, endpoint=endpoint).inc(calls)
        self.written.labels(crm=crm).inc(written)
        self.rejected.labels(crm=crm).inc(rejected)
        for obj, count in (read or {}).items():
            self.extracted.labels(crm=crm, object=obj).inc(count)
        if budget_remaining is not None:
            self.budget.labels(crm=crm).set(budget_remaining)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
