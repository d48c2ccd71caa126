"""Results over HTTP: the analysis reads the sufficient statistics the events built, counts exposed
users for zero-filled metrics, corrects p-values across the family, and checks the sample ratio."""

from __future__ import annotations

import numpy as np
import pytest
from ab_helpers import create
from fastapi.testclient import TestClient
from scipy import stats as sps
from statsmodels.stats.proportion import proportions_ztest


def _send(ab: TestClient, events: list[dict]) -> None:
    for start in range(0, len(events), 5000):
        response = ab.post("/api/events", json={"events": events[start : start + 5000]})
        assert response.status_code == 200, response.text


def test_binary_and_continuous_results_match_independent_tests(ab: TestClient) -> None:
    create(ab)
    rng = np.random.default_rng(11)
    users = [f"u{i}" for i in range(4000)]
    assignments = ab.post("/api/route/batch", json={"experiment": "model_v2_test", "user_ids": users}).json()
    variant = {a["user_id"]: a["variant"] for a in assignments["assignments"]}
    ab.app.state.exposures.flush()  # type: ignore[attr-defined]
    rate = {"control": 0.10, "treatment": 0.13}
    events, revenue = [], {"control": [], "treatment": []}
    for i, user in enumerate(users):
        v = variant[user]
        if rng.random() < rate[v]:
            events.append(
                {
                    "event_id": f"c{i}",
                    "experiment": "model_v2_test",
                    "user_id": user,
                    "metric": "conversion",
                    "value": 1,
                }
            )
            amount = float(np.round(rng.gamma(2.0, 10.0 if v == "control" else 11.0), 2))
            revenue[v].append(amount)
            events.append(
                {
                    "event_id": f"r{i}",
                    "experiment": "model_v2_test",
                    "user_id": user,
                    "metric": "revenue",
                    "value": amount,
                }
            )
    _send(ab, events)
    body = ab.get("/api/experiments/model_v2_test/results").json()
    assert body["phase"] == 1 and body["control"] == "control"
    exposures = {v["name"]: v["exposures"] for v in body["variants"]}
    assert sum(exposures.values()) == 4000
    metrics = {m["name"]: m for m in body["metrics"]}
    conversion = metrics["conversion"]["comparisons"][0]
    assert metrics["conversion"]["primary"] is True
    successes = {
        v: sum(
            1
            for u in users
            if variant[u] == v and any(e["user_id"] == u and e["metric"] == "conversion" for e in events)
        )
        for v in ("control", "treatment")
    }
    # zero-filled: every exposed user counts
    assert (
        conversion["control"]["n"] == exposures["control"]
        and conversion["treatment"]["n"] == exposures["treatment"]
    )
    assert conversion["control"]["sum"] == successes["control"]
    _, p = proportions_ztest(
        [successes["treatment"], successes["control"]], [exposures["treatment"], exposures["control"]]
    )
    assert conversion["p_value"] == pytest.approx(p, rel=1e-6)
    assert conversion["sequential"]["p_value"] >= conversion["p_value"]  # always valid costs power
    assert 0 <= conversion["bayesian"]["chance_to_win"] <= 1
    assert conversion["correction"] == "holm" and conversion["adjusted_p_value"] >= conversion["p_value"]
    rev = metrics["revenue"]["comparisons"][0]
    welch = sps.ttest_ind(revenue["treatment"], revenue["control"], equal_var=False)
    assert rev["test"] == "welch_t" and rev["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    assert rev["treatment"]["n"] == len(revenue["treatment"])  # continuous: users with values
    assert body["sample_ratio_mismatch"]["flagged"] is False
    bh = ab.get(
        "/api/experiments/model_v2_test/results", params={"method": "bh", "mann_whitney": True}
    ).json()
    comp = {m["name"]: m for m in bh["metrics"]}["revenue"]["comparisons"][0]
    assert comp["correction"] == "bh"
    mw = sps.mannwhitneyu(revenue["treatment"], revenue["control"], alternative="two-sided")
    assert comp["mann_whitney"]["p_value"] == pytest.approx(mw.pvalue, rel=1e-6)


def test_a_skewed_sample_ratio_is_flagged(ab: TestClient) -> None:
    create(ab)
    events = [
        {
            "experiment": "model_v2_test",
            "user_id": f"c{i}",
            "variant": "control",
            "metric": "conversion",
            "value": 0,
        }
        for i in range(1200)
    ]
    events += [
        {
            "experiment": "model_v2_test",
            "user_id": f"t{i}",
            "variant": "treatment",
            "metric": "conversion",
            "value": 0,
        }
        for i in range(1000)
    ]
    _send(ab, events)
    srm = ab.get("/api/experiments/model_v2_test/results").json()["sample_ratio_mismatch"]
    expected = sps.chisquare([1200, 1000], [1100, 1100])
    assert srm["p_value"] == pytest.approx(expected.pvalue, rel=1e-6) and srm["flagged"] is True


def test_power_analysis_endpoints(ab: TestClient) -> None:
    from ab_testing.stats import required_sample_size

    create(ab, minimum_detectable_effect=0.1)
    answer = ab.get("/api/experiments/model_v2_test/power", params={"baseline": 0.1}).json()
    assert answer["required_per_variant"] == required_sample_size("binary", 0.1, 0.1, alpha=0.05, power=0.8)
    mde = ab.post(
        "/api/power", json={"metric_type": "continuous", "baseline_mean": 20, "std": 8, "n_per_variant": 5000}
    ).json()
    assert 0 < mde["minimum_detectable_effect"] < 0.05
    bad = ab.post("/api/power", json={"metric_type": "binary", "baseline_mean": 3, "mde": 0.1})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_BASELINE"
    assert (
        ab.post("/api/power", json={"metric_type": "continuous", "baseline_mean": 3, "mde": 0.1}).status_code
        == 422
    )
