"""A/B testing's Prometheus series, read from the database at scrape time (cached; see
`mlops_kit.observability.CachedCollector`): what the folder, the routing buffer and the rollout
controller already wrote, so neither routing nor event ingestion does any extra work, and every
replica reports the same values.

- `mlops_ab_experiment_info{experiment,mode,status,model}` 1 per experiment
- `mlops_ab_exposed_users{experiment,variant}` users exposed in the current phase
- `mlops_ab_srm_p_value{experiment}` the sample-ratio-mismatch p-value of the current phase
  (chi-square against the weights; absent for bandits and before any exposure)
- `mlops_ab_canary_stage_percent{experiment,model}` traffic on the candidate, `mlops_ab_canary_stage`
  its stage index, `mlops_ab_canary_status{experiment,model,status}` 1 for running, rolled_back or promoted
- `mlops_ab_rollout_decisions_total{experiment,model,kind}` decisions recorded (advance, hold,
  promote, rollback, reweight), every kind from 0 for canaries and bandits

Cardinality is bounded: the `max_experiments` most recently updated experiments not archived.
"""

from __future__ import annotations

from typing import Any

from mlops_kit.db import Database
from mlops_kit.observability import CachedCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ab_testing import metrics_repository as repo
from ab_testing.rollouts import canary
from ab_testing.stats import srm_check
from ab_testing.tables import Experiment

DECISION_KINDS = ("advance", "hold", "promote", "rollback", "reweight")
CANARY_STATES = (canary.RUNNING, canary.ROLLED_BACK, canary.PROMOTED)


def _families() -> dict[str, Any]:
    gauge, counter = GaugeMetricFamily, CounterMetricFamily
    return {
        "info": gauge(
            "mlops_ab_experiment_info",
            "1 per experiment (its mode, status and model)",
            labels=["service", "experiment", "mode", "status", "model"],
        ),
        "exposed": gauge(
            "mlops_ab_exposed_users",
            "Users exposed to the variant in the experiment's current phase",
            labels=["service", "experiment", "variant"],
        ),
        "srm": gauge(
            "mlops_ab_srm_p_value",
            "Sample ratio mismatch p-value of the current phase (an SRM below 0.001)",
            labels=["service", "experiment"],
        ),
        "percent": gauge(
            "mlops_ab_canary_stage_percent",
            "Percent of traffic on the canary's candidate in its current stage",
            labels=["service", "experiment", "model"],
        ),
        "stage": gauge(
            "mlops_ab_canary_stage",
            "The canary's stage (index into its stages)",
            labels=["service", "experiment", "model"],
        ),
        "status": gauge(
            "mlops_ab_canary_status",
            "1 for the canary's status (running, rolled_back, promoted), 0 for the others",
            labels=["service", "experiment", "model", "status"],
        ),
        "decisions": counter(
            "mlops_ab_rollout_decisions",
            "Rollout decisions recorded (canary, bandit and manual promotion), by kind",
            labels=["service", "experiment", "model", "kind"],
        ),
    }


def _model(experiment: Experiment) -> str:
    return canary.model_name(experiment, canary.config(experiment)) or ""


def _experiment(
    out: dict[str, Any], service: str, e: Experiment, exposed: dict[tuple[str, str], int]
) -> None:
    model = _model(e)
    out["info"].add_metric([service, e.key, e.mode, e.status, model], 1.0)
    counts: list[int] = [exposed.get((e.id, v["name"]), 0) for v in e.variants]
    for variant, count in zip(e.variants, counts, strict=True):
        out["exposed"].add_metric([service, e.key, variant["name"]], float(count))
    weights = [float(v.get("weight", 0)) for v in e.variants]
    exposed_total, weight_total = sum(counts), sum(weights)
    if e.mode != "bandit" and exposed_total > 0 and weight_total > 0:
        out["srm"].add_metric([service, e.key], srm_check(counts, weights).p_value)
    if e.mode == "canary":
        _canary(out, service, e, model)


def _canary(out: dict[str, Any], service: str, e: Experiment, model: str) -> None:
    state = canary.config(e)
    stages = state.get("stages") or []
    stage = int(state.get("stage", 0))
    if stages and 0 <= stage < len(stages):
        out["percent"].add_metric([service, e.key, model], float(stages[stage]))
        out["stage"].add_metric([service, e.key, model], float(stage))
    current = state.get("status", canary.RUNNING)
    for status in CANARY_STATES:
        out["status"].add_metric([service, e.key, model, status], float(current == status))


class AbCollector(CachedCollector):
    def __init__(self, db: Database, service: str, *, cache_seconds: float = 5.0, max_experiments: int = 200):
        super().__init__(cache_seconds)
        self.db, self.service, self.max_experiments = db, service, max_experiments

    def read(self) -> list[Metric]:
        out = _families()
        with self.db.session(write=False) as session:
            experiments = repo.recent_experiments(session, self.max_experiments)
            ids = [e.id for e in experiments]
            exposed = repo.current_exposures(session, experiments) if ids else {}
            decisions = repo.decision_counts(session, ids) if ids else {}
        for e in experiments:
            _experiment(out, self.service, e, exposed)
            counts = dict.fromkeys(DECISION_KINDS, 0) if e.mode in ("canary", "bandit") else {}
            counts.update(decisions.get(e.id, {}))
            for kind, count in sorted(counts.items()):
                out["decisions"].add_metric([self.service, e.key, _model(e), kind], float(count))
        return list(out.values())
