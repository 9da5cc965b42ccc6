"""`Metrics.child`: a labelled child looked up once, counting into the same series."""

from __future__ import annotations

from router.core.metrics import Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_a_child_counts_into_the_series_labels_names() -> None:
    metrics = Metrics()
    metrics.child(metrics.events_received, "accepted", "FAILED").inc()
    metrics.child(metrics.events_received, "accepted", "FAILED").inc()
    metrics.events_received.labels("accepted", "FAILED").inc()
    metrics.child(metrics.events_received, "duplicate", "FAILED").inc()
    name = "revring_router_events_received_total"
    assert sample(metrics, name, outcome="accepted", status="FAILED") == 3
    assert sample(metrics, name, outcome="duplicate", status="FAILED") == 1


def test_the_same_label_values_of_two_metrics_are_two_children() -> None:
    metrics = Metrics()
    metrics.child(metrics.rule_matches, "r1").inc()
    metrics.child(metrics.attempt_duration, "r1").observe(0.2)
    assert sample(metrics, "revring_router_rule_matches_total", rule="r1") == 1
    assert sample(metrics, "revring_router_delivery_attempt_duration_seconds_count", sink="r1") == 1
