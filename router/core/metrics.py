"""The Prometheus metrics of DESIGN.md section 4, on a registry of their own per app."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PREFIX = "revring_router_"
DIGEST_CALL_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
ATTEMPT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        self.backlog_sinks: set[str] = set()  # sinks whose backlog gauges have been set
        r = self.registry
        self.events_received = Counter(
            PREFIX + "events_received_total",
            "Webhook requests by outcome (accepted, duplicate, rejected) and call status.",
            ["outcome", "status"],
            registry=r,
        )
        self.events_rejected = Counter(
            PREFIX + "events_rejected_total",
            "Rejected webhook requests by reason.",
            ["reason"],
            registry=r,
        )
        self.rule_matches = Counter(
            PREFIX + "rule_matches_total", "Accepted events matched, by rule.", ["rule"], registry=r
        )
        self.deliveries = Counter(
            PREFIX + "deliveries_total",
            "Delivery attempts by sink and outcome (delivered, retried, dead).",
            ["sink", "outcome"],
            registry=r,
        )
        self.attempt_duration = Histogram(
            PREFIX + "delivery_attempt_duration_seconds",
            "Duration of one delivery attempt, by sink.",
            ["sink"],
            buckets=ATTEMPT_BUCKETS,
            registry=r,
        )
        self.pending = Gauge(
            PREFIX + "deliveries_pending", "Pending deliveries, by sink.", ["sink"], registry=r
        )
        self.dead = Gauge(
            PREFIX + "deliveries_dead",
            "Dead deliveries kept for replay, by sink.",
            ["sink"],
            registry=r,
        )
        self.oldest_pending_age = Gauge(
            PREFIX + "oldest_pending_delivery_age_seconds",
            "Age of the oldest pending delivery, by sink.",
            ["sink"],
            registry=r,
        )
        self.sink_paused = Gauge(
            PREFIX + "sink_paused",
            "1 while a sink is paused, after repeated failures or by hand (sink pause).",
            ["sink"],
            registry=r,
        )
        self.reload_successful = Gauge(
            PREFIX + "config_last_reload_successful",
            "1 if the last load of rules.yaml succeeded.",
            registry=r,
        )
        self.reload_timestamp = Gauge(
            PREFIX + "config_last_reload_success_timestamp_seconds",
            "Time of the last successful load of rules.yaml.",
            registry=r,
        )
        self.open_groups = Gauge(
            PREFIX + "open_groups",
            "Digests still gathering calls (grouped rules), by sink.",
            ["sink"],
            registry=r,
        )
        self.digest_calls = Histogram(
            PREFIX + "digest_calls",
            "Calls per delivered digest, by sink.",
            ["sink"],
            buckets=DIGEST_CALL_BUCKETS,
            registry=r,
        )
        self.deliveries_muted = Counter(
            PREFIX + "deliveries_muted_total",
            "Deliveries recorded as muted and not sent, by sink and reason"
            " (silence, time_interval).",
            ["sink", "reason"],
            registry=r,
        )
        self.slack_actions = Counter(
            PREFIX + "slack_actions_total",
            "Clicks on alerts' Slack buttons, by action (silence, acknowledge; none when"
            " unreadable) and outcome (silenced, extended, acknowledged, already_acknowledged,"
            " refused, failed, unauthorized, invalid).",
            ["action", "outcome"],
            registry=r,
        )
        self.audit_events = Counter(
            PREFIX + "audit_events_total",
            "Changes this process recorded in the audit, by action (replay, silence.create,"
            " sink.pause, reload, signin, signin.failed, ...).",
            ["action"],
            registry=r,
        )
        self.escalations = Counter(
            PREFIX + "escalations_total",
            "Alerts nobody acknowledged in time, escalated (DESIGN.md section 16), by rule.",
            ["rule"],
            registry=r,
        )
        self.template_missing_values = Counter(
            PREFIX + "template_missing_values_total",
            "Values a template printed that the call lacked (rendered empty), by sink.",
            ["sink"],
            registry=r,
        )
        self.unknown_values = Counter(
            PREFIX + "unknown_values_total",
            "Events carrying a status or direction outside the documented set, by field.",
            ["field"],
            registry=r,
        )

    def child(self, metric: Counter | Gauge | Histogram, *values: str) -> Any:
        """`metric.labels(*values)`, looked up once per label values: prometheus-client
        checks the values and takes a lock on every `labels()` call (about 1.3 µs), several
        times per call on the webhook's hot path. (No code removes a child, so a cached
        one is never stale.)"""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found


def muted_reason_label(reason: str) -> str:
    """The `reason` label of `deliveries_muted_total` for a muted delivery's reason
    (`silence:ID` or `time_interval:NAME`): the kind, without the id or name."""
    return reason.partition(":")[0]
