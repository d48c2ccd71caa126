"""The alert rules' core: metric names a rule may use, and each rule's state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from model_registry.monitoring import alerts
from model_registry.monitoring.alerts import FIRING, INACTIVE, PENDING, RESOLVED, Rule, State, step

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _rule(metric: str = "accuracy", operator: str = "less_than", minutes: int = 5, kind: str = "") -> Rule:
    alert_type = kind or ("performance" if metric in alerts.PERFORMANCE_METRICS else "drift")
    return Rule("r", alert_type, "high", metric, operator, 0.8, minutes)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_condition_that_holds_for_the_duration_fires_and_then_resolves() -> None:
    rule = _rule()
    pending = step(rule, State(), True, _at(0))
    assert pending == State(PENDING, _at(0), _at(0))
    assert step(rule, pending, True, _at(4.9)) is pending  # unchanged: no new history row
    firing = step(rule, pending, True, _at(5))
    assert firing == State(FIRING, _at(5), _at(0))
    assert step(rule, firing, True, _at(60)) is firing
    resolved = step(rule, firing, False, _at(61))
    assert resolved == State(RESOLVED, _at(61), None)
    assert step(rule, resolved, False, _at(62)) is resolved
    assert step(rule, resolved, True, _at(63)).state == PENDING


def test_a_pending_rule_whose_condition_stops_goes_back_to_inactive() -> None:
    pending = step(_rule(), State(), True, _at(0))
    assert step(_rule(), pending, False, _at(1)) == State(INACTIVE, _at(1), None)


def test_a_zero_duration_fires_at_once() -> None:
    assert step(_rule(minutes=0), State(), True, _at(0)).state == FIRING


def test_no_value_never_holds() -> None:
    for operator in alerts.OPERATORS:
        assert not alerts.holds(_rule(operator=operator), None)
    assert alerts.holds(_rule(operator="less_than"), 0.5)
    assert not alerts.holds(_rule(operator="greater_than_or_equal"), 0.5)


def test_metric_names_are_checked_against_the_rule_type_and_the_reference() -> None:
    assert alerts.metric_problems(_rule("roc_auc"), None) == []
    assert alerts.metric_problems(_rule("drift_score:age"), ["age"]) == []
    assert alerts.metric_problems(_rule("drift_score:age"), None) == []  # no reference yet
    assert "not in the watched version's reference" in alerts.metric_problems(_rule("drifted:x"), ["age"])[0]
    assert "not a drift metric" in alerts.metric_problems(_rule("accuracy", kind="drift"), None)[0]
    assert (
        "not a performance metric"
        in alerts.metric_problems(_rule("drift_score", kind="performance"), None)[0]
    )
    assert "not a drift metric" in alerts.metric_problems(_rule("drift_score:", kind="drift"), None)[0]


def _report(status: str, drifted: list[str], features: list[dict]) -> dict:
    return {
        "dataset": {
            "status": status,
            "drifted": bool(drifted),
            "drifted_features": drifted,
            "evaluated_features": sum(f["status"] == "ok" for f in features),
        },
        "features": features,
    }


def test_drift_values_use_the_p_value_of_tests_and_the_distance_of_the_others() -> None:
    features = [
        {"feature": "a", "status": "ok", "method": "ks", "p_value": 0.01, "statistic": 0.3, "drifted": True},
        {
            "feature": "b",
            "status": "ok",
            "method": "psi",
            "p_value": None,
            "statistic": 0.05,
            "drifted": False,
        },
        {
            "feature": "c",
            "status": "insufficient_data",
            "method": "ks",
            "p_value": None,
            "statistic": None,
            "drifted": False,
        },
    ]
    values = alerts.drift_values(_report("ok", ["a"], features))
    assert values["drift_score:a"] == 0.01 and values["drift_score:b"] == 0.05
    assert values["drifted:a"] == 1.0 and values["drifted:b"] == 0.0
    assert values["drift_score:c"] is None and values["drifted:c"] is None
    assert values["dataset_drift"] == 1.0 and values["drift_score"] == values["drifted_share"] == 0.5


def test_insufficient_data_gives_no_drift_values() -> None:
    features = [
        {
            "feature": "a",
            "status": "insufficient_data",
            "method": "ks",
            "p_value": None,
            "statistic": None,
            "drifted": False,
        }
    ]
    values = alerts.drift_values(_report("insufficient_data", [], features))
    assert values["dataset_drift"] is None and values["drift_score"] is None
