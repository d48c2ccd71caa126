"""Alert rules without a framework: the metric names a rule may use, the checks of a rule set, the
values of an evaluation, and each rule's state machine.

States: ``inactive`` → ``pending`` (the condition holds, for less than the rule's duration) →
``firing`` (it has held for the duration) → ``resolved`` (it stopped holding) → ``pending`` ... A
pending rule whose condition stops holding goes back to ``inactive``. No value (insufficient data,
no reference, no labels) means the condition does not hold, so missing data never fires an alert
(as a Prometheus expression without samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from model_registry.monitoring import drift as st
from model_registry.monitoring.performance_classification import BINARY_NAMES, MULTICLASS_NAMES

REGRESSION_NAMES = ("mae", "rmse", "r2", "mape")
PERFORMANCE_METRICS = tuple(dict.fromkeys((*BINARY_NAMES, *MULTICLASS_NAMES, *REGRESSION_NAMES)))
DATASET_DRIFT = "dataset_drift"  # 1 when the dataset verdict is drift, 0 when not
DRIFTED_SHARE = "drifted_share"  # share of the evaluated features that drifted
DRIFT_SCORE = "drift_score"  # the same share: the document's `drift_score` of the dataset
DRIFT_METRICS = (DATASET_DRIFT, DRIFT_SCORE, DRIFTED_SHARE)
FEATURE_PREFIXES = ("drift_score:", "drifted:")  # + a feature name: its score, 1/0 for drifted

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "less_than": lambda v, t: v < t,
    "less_than_or_equal": lambda v, t: v <= t,
    "greater_than": lambda v, t: v > t,
    "greater_than_or_equal": lambda v, t: v >= t,
    "equal": lambda v, t: v == t,
    "not_equal": lambda v, t: v != t,
}


@dataclass(frozen=True)
class Rule:
    name: str
    alert_type: str
    severity: str
    metric_name: str
    operator: str
    threshold: float
    duration_minutes: int = 0

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Rule:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def feature_of(metric: str) -> str | None:
    """The feature a per-feature drift metric names (``drift_score:age`` → ``age``)."""
    for prefix in FEATURE_PREFIXES:
        if metric.startswith(prefix):
            return metric[len(prefix) :] or None
    return None


def metric_problems(rule: Rule, features: Sequence[str] | None) -> list[str]:
    """What is wrong with one rule's metric (`features`: the reference's columns, when known)."""
    where = f"alert rule {rule.name!r}"
    if rule.alert_type == "performance":
        if rule.metric_name not in PERFORMANCE_METRICS:
            return [
                f"{where}: {rule.metric_name!r} is not a performance metric "
                f"(one of {', '.join(PERFORMANCE_METRICS)})"
            ]
        return []
    if rule.metric_name in DRIFT_METRICS:
        return []
    feature = feature_of(rule.metric_name)
    if feature is None:
        return [
            f"{where}: {rule.metric_name!r} is not a drift metric (one of {', '.join(DRIFT_METRICS)}, "
            "or drift_score:<feature>, drifted:<feature>)"
        ]
    if features is not None and feature not in features:
        return [f"{where}: feature {feature!r} is not in the watched version's reference profile"]
    return []


def rule_problems(rules: Sequence[Rule], drift_enabled: bool, features: Sequence[str] | None) -> list[str]:
    """Every problem of a rule set (duplicate names, unknown metrics, drift rules without drift)."""
    problems: list[str] = []
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            problems.append(f"alert rule name {rule.name!r} is used twice")
        seen.add(rule.name)
        if rule.alert_type == "drift" and not drift_enabled:
            problems.append(f"alert rule {rule.name!r} is a drift rule but drift_detection_enabled is false")
        problems.extend(metric_problems(rule, features))
    return problems


# ---- the values of one evaluation -------------------------------------------------------------


def feature_score(result: Mapping[str, Any]) -> float | None:
    """A feature's drift score: the p-value of a test (drift when small), else the distance
    (drift when large) — Evidently's `drift_score`."""
    if result.get("status") != "ok":
        return None
    value = result["p_value"] if result["method"] in st.P_VALUE_METHODS else result["statistic"]
    return float(value) if value is not None and math.isfinite(value) else None


def drift_values(report: Mapping[str, Any]) -> dict[str, float | None]:
    dataset = report["dataset"]
    ok = dataset["status"] == "ok"
    evaluated = dataset["evaluated_features"]
    share = len(dataset["drifted_features"]) / evaluated if ok and evaluated else None
    values: dict[str, float | None] = {
        DATASET_DRIFT: float(dataset["drifted"]) if ok else None,
        DRIFTED_SHARE: share,
        DRIFT_SCORE: share,
    }
    for result in report["features"]:
        score = feature_score(result)
        values[f"drift_score:{result['feature']}"] = score
        values[f"drifted:{result['feature']}"] = float(result["drifted"]) if score is not None else None
    return values


def performance_values(report: Mapping[str, Any]) -> tuple[dict[str, float | None], dict[str, str]]:
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    for name, metric in report["metrics"].items():
        value = metric["value"]
        values[name] = float(value) if value is not None and math.isfinite(value) else None
        if values[name] is None:
            reasons[name] = metric.get("reason") or "no value"
    return values, reasons


# ---- state machine ----------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    state: str = INACTIVE
    since: datetime | None = None
    active_since: datetime | None = None  # when the condition started to hold


def holds(rule: Rule, value: float | None) -> bool:
    return value is not None and OPERATORS[rule.operator](value, rule.threshold)


def step(rule: Rule, current: State, condition: bool, now: datetime) -> State:
    """The rule's next state after an evaluation at `now` (the same object when unchanged)."""
    if not condition:
        if current.state == PENDING:
            return State(INACTIVE, now, None)
        if current.state == FIRING:
            return State(RESOLVED, now, None)
        return current
    started = current.active_since if current.state in (PENDING, FIRING) else now
    assert started is not None
    if current.state == FIRING:
        return current
    if now - started >= timedelta(minutes=rule.duration_minutes):
        return State(FIRING, now, started)
    if current.state == PENDING:
        return current
    return State(PENDING, now, started)
