"""``GET /metrics``: Prometheus metrics of one app, in a registry of its own (never the process-wide
default, so that several apps in one process - tests - keep separate numbers).

Inventory gauges are read from the database at each scrape; the scheduling counters and the decision
latency histogram come from the app's ``SchedulingService.counters``."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from epa.api.auth import admin
from epa.inventory import Database
from epa.inventory.metrics import inventory_stats
from epa.service.scheduling import SchedulingService


class InventoryCollector(Collector):
    """Devices by host, dev_type and status; hosts total and enabled; seconds since each agent's report."""

    def __init__(self, db: Database, service: SchedulingService) -> None:
        self.db = db
        self.service = service

    def collect(self) -> Iterable[Metric]:
        stats = inventory_stats(self.db)
        devices = GaugeMetricFamily(
            "epa_devices", "PCI functions in the inventory.", labels=["host", "dev_type", "status"]
        )
        for d in stats.devices:
            devices.add_metric([d.host, d.dev_type, d.status], d.count)
        yield devices
        yield GaugeMetricFamily("epa_hosts", "Hosts known to EPA.", value=len(stats.hosts))
        yield GaugeMetricFamily(
            "epa_hosts_enabled", "Hosts that may get new servers.", value=sum(h.enabled for h in stats.hosts)
        )
        age = GaugeMetricFamily(
            "epa_agent_report_age_seconds",
            "Seconds since the host's agent last reported (hosts that never reported are absent).",
            labels=["host"],
        )
        now = self.service.clock()
        for h in stats.hosts:
            if h.last_report_at is not None:
                age.add_metric([h.host], max(0.0, now - h.last_report_at.timestamp()))
        yield age


class SchedulingCollector(Collector):
    """The service's counters and its decision-time histogram."""

    def __init__(self, service: SchedulingService) -> None:
        self.service = service

    def collect(self) -> Iterable[Metric]:
        c = self.service.counters
        for name, doc, value in (
            ("epa_server_creates", "Server creates asked of the scheduler.", c.creates),
            ("epa_servers_scheduled", "Servers placed on a host with their devices claimed.", c.scheduled),
            ("epa_scheduling_no_valid_host", "Server creates that no host could take.", c.no_valid_host),
            ("epa_claim_conflicts", "Claims lost to another writer and retried.", c.claim_conflicts),
            (
                "epa_view_refreshes",
                "Refreshes of this process's scheduler view.",
                self.service.follower.stats.refreshes,
            ),
            (
                "epa_view_reloaded_hosts",
                "Hosts reloaded into the scheduler view (the first load, then what the change feed named).",
                self.service.follower.stats.reloaded_hosts,
            ),
            (
                "epa_view_liveness_checked",
                "Hosts whose liveness was read back as they neared the agent timeout.",
                self.service.follower.stats.liveness_checked,
            ),
            ("epa_view_refresh_seconds", "Time spent refreshing the view.", self.service.follower.stats.seconds),
            (
                "epa_view_wakeups",
                "Change-feed notifications (and listener reconnections) that woke the view (PostgreSQL).",
                self.service.wakeups(),
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        yield from c.decision_seconds.collect()


def build_registry(db: Database, service: SchedulingService) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InventoryCollector(db, service))
    registry.register(SchedulingCollector(service))
    return registry


def install(app: FastAPI, public: bool = False) -> None:
    """Give ``app`` its own registry and the ``GET /metrics`` route: the admin token by default (the metrics
    name every host and tell its use); ``public`` for a scraper on a trusted network (``--metrics-public``)."""
    registry = build_registry(app.state.db, app.state.scheduling)
    app.state.metrics_registry = registry
    guard = [] if public else [Depends(admin)]

    @app.get("/metrics", tags=["metrics"], response_class=Response, dependencies=guard)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
