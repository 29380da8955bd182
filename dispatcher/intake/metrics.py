"""The intake's Prometheus series, in a registry of their own (several servers in one test process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf"))


class IntakeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # route is the route's template (/api/v1/internal/scheduled-tasks/{kind}), never the raw path,
        # so a scanner probing random URLs cannot grow the series without bound
        self.requests = Counter("nightshift_intake_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("nightshift_intake_request_seconds", "Time to answer, by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("nightshift_intake_rejected",
                                "Requests refused for bad input, by route and reason", ["route", "reason"],
                                registry=r)
        self.signature_failures = Counter(
            "nightshift_intake_webhook_signature_failures",
            "Webhook deliveries refused for their signature (missing, malformed, mismatch, no-secret)",
            ["reason"], registry=r)
        self.deliveries = Counter("nightshift_intake_webhook_deliveries",
                                  "Verified webhook deliveries by event and outcome", ["event", "outcome"],
                                  registry=r)
        self.duplicates = Counter("nightshift_intake_webhook_duplicates",
                                  "Deliveries whose id was already received (replays)", registry=r)
        self.enqueued = Counter("nightshift_intake_tasks_enqueued",
                                "Tasks enqueued through the intake, by kind and source", ["kind", "source"],
                                registry=r)
        self.auth_failures = Counter("nightshift_intake_auth_failures",
                                     "Bearer tokens refused (missing, malformed, unknown, revoked, expired, "
                                     "scope)", ["reason"], registry=r)
