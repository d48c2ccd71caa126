"""A/B testing's /metrics (read from the database at scrape time, on SQLite and PostgreSQL):
exposed users per variant, the SRM p-value the results answer, an archived experiment left out,
a canary's stage, status and decisions (every kind from 0, so a first rollback is an increase)."""

from __future__ import annotations

import math
from typing import Any

from ab_helpers import create
from fastapi.testclient import TestClient
from mlops_kit.testing.backends import wait_until
from prometheus_client.parser import text_string_to_metric_families


def samples(ab: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = ab.get("/metrics").text
    return {
        (s.name, frozenset((k, v) for k, v in s.labels.items() if k != "service")): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("mlops_ab_")
        for s in family.samples
    }


def sample(ab: TestClient, name: str, **labels: str) -> float | None:
    return samples(ab).get((name, frozenset(labels.items())))


def canary() -> dict[str, Any]:
    return {
        "mode": "canary",
        "model_name": "ranker",
        "variants": [
            {"name": "baseline", "weight": 0.5, "model_version": "1"},
            {"name": "candidate", "weight": 0.5, "model_version": "2"},
        ],
        "canary": {"stages": [10, 50, 100], "stage_seconds": 3600, "min_samples": 100},
    }


def test_exposures_and_the_srm_p_value_are_the_results(ab: TestClient) -> None:
    create(ab, "skewed")
    for i in range(120):
        assert ab.get("/api/route", params={"user_id": f"u{i}", "experiment": "skewed"}).status_code == 200
    ab.app.state.exposures.flush()  # type: ignore[attr-defined]
    results = ab.get("/api/experiments/skewed/results").json()
    exposed = {v["name"]: v["exposures"] for v in results["variants"]}
    assert sum(exposed.values()) == 120

    def exported() -> bool:
        got = {v: sample(ab, "mlops_ab_exposed_users", experiment="skewed", variant=v) for v in exposed}
        return got == {v: float(n) for v, n in exposed.items()}

    wait_until(exported, timeout=15, what="the exposures exported")
    p_value = sample(ab, "mlops_ab_srm_p_value", experiment="skewed")
    assert p_value is not None and math.isclose(p_value, results["sample_ratio_mismatch"]["p_value"])
    assert (
        sample(ab, "mlops_ab_experiment_info", experiment="skewed", mode="ab", status="running", model="")
        == 1
    )


def test_a_canary_exports_its_stage_status_and_every_decision_kind(ab: TestClient) -> None:
    create(ab, "ranker-canary", **canary())
    create(ab, "gone", start=False)
    assert ab.post("/api/experiments/gone/archive").status_code == 200
    labels = {"experiment": "ranker-canary", "model": "ranker"}

    def exported() -> float | None:
        return sample(ab, "mlops_ab_canary_stage_percent", **labels)

    assert wait_until(exported, timeout=15, what="the canary exported") == 10.0
    assert sample(ab, "mlops_ab_canary_stage", **labels) == 0.0
    assert sample(ab, "mlops_ab_canary_status", **labels, status="running") == 1.0
    assert sample(ab, "mlops_ab_canary_status", **labels, status="rolled_back") == 0.0
    for kind in ("advance", "promote", "rollback", "reweight"):  # no outcomes yet: none of these
        assert sample(ab, "mlops_ab_rollout_decisions_total", **labels, kind=kind) == 0.0
    holds = sample(ab, "mlops_ab_rollout_decisions_total", **labels, kind="hold")
    assert holds is not None and holds >= 0  # exported from 0; the controller may already have held
    assert not [key for key in samples(ab) if ("experiment", "gone") in key[1]]
