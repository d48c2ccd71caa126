"""Experiment tracking: experiment, run, params, metric history, and the MLflow REST API."""

from __future__ import annotations

import time
from dataclasses import dataclass

from validation.context import Context, answer
from validation.core import Journey, expect, kv

LOSS = [0.9, 0.6, 0.4]


@dataclass
class _State:
    experiment: str
    experiment_id: str = ""
    run_id: str = ""


def journey(ctx: Context) -> Journey:
    j = Journey("tracking", ctx.table)
    s = _State(ctx.name("tracking-experiment"))
    tracking = ctx.mlops.tracking
    mlflow = ctx.http("experiment_tracking")

    @j.step("create an experiment")
    def experiment() -> str:
        s.experiment_id = tracking.create_experiment(
            s.experiment, description="validation", tags={"validate": "1"}
        ).id
        expect(tracking.get_experiment_by_name(s.experiment).id == s.experiment_id, "by-name lookup differs")
        return kv(experiment=s.experiment, id=s.experiment_id)

    @j.step("start a run with params")
    def run() -> str:
        created = tracking.create_run(
            s.experiment_id, run_name="validate-run", parameters={"learning_rate": 0.01, "batch_size": 32}
        )
        s.run_id = created.id
        tracking.log_params(s.experiment_id, s.run_id, {"optimizer": "adam"})
        params = tracking.get_run(s.experiment_id, s.run_id).params
        expect(
            params == {"learning_rate": "0.01", "batch_size": "32", "optimizer": "adam"}, f"params {params}"
        )
        return kv(run=s.run_id, status=created.status, params=len(params))

    @j.step("log a metric history and read it back")
    def history() -> str:
        for step, loss in enumerate(LOSS):
            tracking.log_metric(s.experiment_id, s.run_id, "loss", loss, step=step)
        tracking.log_metrics(s.experiment_id, s.run_id, {"accuracy": 0.93})
        points = tracking.metric_history(s.experiment_id, s.run_id, "loss")
        values = [p.value for p in sorted(points, key=lambda p: p.step)]
        expect(values == LOSS, f"history {values} != logged {LOSS}")
        return kv(loss=values)

    @j.step("finish the run and find it by search")
    def search() -> str:
        tracking.end_run(s.experiment_id, s.run_id)
        page = tracking.search_runs(
            [s.experiment_id], filter="metrics.accuracy > 0.9 and params.batch_size = '32'"
        )
        ids = [r.id for r in page.items]
        expect(ids == [s.run_id], f"search found {ids}")
        best = tracking.best_run(s.experiment_id, "accuracy")
        expect(best.status == "FINISHED", f"run status {best.status}")
        return kv(found=ids, status=best.status)

    @j.step("MLflow REST API: run, log-metric, get-history")
    def mlflow_rest() -> str:
        base = "/api/2.0/mlflow"
        found = answer(
            mlflow.get(f"{base}/experiments/get-by-name", params={"experiment_name": s.experiment})
        )
        expect(found["experiment"]["experiment_id"] == s.experiment_id, f"MLflow sees {found}")
        run = answer(mlflow.get(f"{base}/runs/get", params={"run_id": s.run_id}))["run"]
        logged = {p["key"]: p["value"] for p in run["data"].get("params", [])}
        expect(logged.get("batch_size") == "32", f"MLflow params {logged}")
        now = int(time.time() * 1000)
        answer(
            mlflow.post(
                f"{base}/runs/log-metric",
                json={"run_id": s.run_id, "key": "mlflow_metric", "value": 0.5, "timestamp": now, "step": 1},
            )
        )
        hist = answer(
            mlflow.get(f"{base}/metrics/get-history", params={"run_id": s.run_id, "metric_key": "loss"})
        )
        native = tracking.latest_metrics(s.experiment_id, s.run_id)
        expect(len(hist["metrics"]) == len(LOSS), f"MLflow loss history {hist}")
        expect("mlflow_metric" in native, f"metric logged through MLflow not seen natively: {sorted(native)}")
        return kv(mlflow_loss_points=len(hist["metrics"]), native_sees="mlflow_metric")

    @j.on_cleanup("clean up the test experiment")
    def cleanup() -> str:
        if not s.experiment_id:
            return "nothing created"
        tracking.delete_experiment(s.experiment_id)
        return f"deleted {s.experiment} (soft delete; its runs too)"

    return j
