"""The closed loop as far as the platform carries it today: features → training with HPO →
registered and served with online features → traffic, drift, accuracy drop → registry monitoring."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_client import ConflictError, NotFoundError

from validation.context import Context, answer
from validation.core import Journey, expect, kv, wait_for
from validation.features import delete_created
from validation.registry import delete_model

N_TRIALS = 4
TRAIN_SECONDS = 600
LOAD_SECONDS = 120
LOG_SECONDS = 60
LAST = "drift and the accuracy drop visible in registry monitoring"
SHIFTED = 8  # features whose values move by +3 standard deviations in the drift phase


@dataclass
class Dataset:
    names: list[str]
    X: list[list[float]]
    y: list[int]
    train: list[int]
    test: list[int]

    @classmethod
    def load(cls) -> Dataset:
        """breast_cancer split as the training template splits it (stratified, seed 42, 25 %)."""
        import numpy as np
        from sklearn.datasets import load_breast_cancer
        from sklearn.model_selection import train_test_split

        bunch = load_breast_cancer()
        names = [re.sub(r"\W+", "_", str(n)).strip("_") for n in bunch.feature_names]
        index = np.arange(len(bunch.target))
        train, test = train_test_split(index, test_size=0.25, random_state=42, stratify=bunch.target)
        return cls(names, bunch.data.round(6).tolist(), bunch.target.tolist(), train.tolist(), test.tolist())

    def entity(self, i: int) -> str:
        return f"p{i:04d}"


@dataclass
class LoopState:
    prefix: str
    entity: str
    feature_set: str
    feature_service: str
    pipeline: str
    experiment: str
    model: str
    deployment: str
    data: Dataset | None = None
    run_id: str = ""
    tune: dict[str, Any] = field(default_factory=dict)
    version: str = ""
    registered_accuracy: float = 0.0
    baseline_ids: list[str] = field(default_factory=list)
    drift_ids: list[str] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)
    ab_experiments: list[str] = field(default_factory=list)
    policy: bool = False

    @classmethod
    def create(cls, ctx: Context) -> LoopState:
        return cls(
            prefix=ctx.prefix,
            entity=ctx.name("patient"),
            feature_set=ctx.name("patient_features"),
            feature_service=ctx.name("classifier_features"),
            pipeline=ctx.name("train-classifier"),
            experiment=ctx.name("training"),
            model=ctx.name("classifier"),
            deployment=ctx.name("classifier-api"),
        )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def add_steps(j: Journey, ctx: Context, s: LoopState) -> None:
    mlops = ctx.mlops
    serving_http = ctx.http("model_serving")

    @j.step("features ingested, materialized and served online")
    def features() -> str:
        s.data = data = Dataset.load()
        fs = mlops.features
        fs.create_entity(s.entity, join_keys=["patient_id"])
        s.created.append(("entity", s.entity))
        fs.create_feature_set(s.feature_set, dict.fromkeys(data.names, "float"), entity=s.entity, ttl="30d")
        s.created.append(("feature set", s.feature_set))
        when = _iso(datetime.now(UTC) - timedelta(hours=1))
        rows = [
            {"patient_id": data.entity(i), "event_timestamp": when, **dict(zip(data.names, x, strict=True))}
            for i, x in enumerate(data.X)
        ]
        written = fs.ingest(s.feature_set, rows).rows_written
        job = fs.wait_for_job(fs.materialize(s.feature_set).id, timeout=120)
        fs.create_feature_service(s.feature_service, [f"{s.feature_set}:*"])
        s.created.append(("feature service", s.feature_service))
        got = fs.online([{"patient_id": data.entity(0)}], feature_service=s.feature_service).values()[0]
        expect(
            got[data.names[0]] == data.X[0][0],
            f"online {data.names[0]}={got[data.names[0]]}, ingested {data.X[0][0]}",
        )
        return kv(
            rows=written, features=len(data.names), job=f"{job.id} {job.status}", service=s.feature_service
        )

    @j.step("training pipeline: hyper-parameter search, train, evaluate, register")
    def train() -> str:
        from pipeline_orchestrator.templates import training_pipeline

        definition = training_pipeline(s.pipeline, n_trials=N_TRIALS, parallelism=2, experiment=s.experiment)
        mlops.pipelines.create_pipeline(definition)
        params = {"model_name": s.model, "dataset": "breast_cancer", "promote": True}
        run = mlops.pipelines.trigger(s.pipeline, params)
        s.run_id = run.id
        done = mlops.pipelines.wait_for_run(run.id, timeout=TRAIN_SECONDS, poll_interval=1.0)
        s.tune = done.task("tune").outputs
        metrics = done.task("evaluate").outputs.get("metrics", {})
        cached = [t.name for t in done.tasks if t.state == "cached"]
        return kv(
            run=done.id,
            state=done.state,
            cached=cached or None,
            best_params=s.tune.get("best_params"),
            best_cv=round(float(s.tune.get("best_value", 0)), 4),
            test_accuracy=round(float(metrics.get("accuracy", 0)), 4),
        )

    @j.step("every trial logged to experiment tracking")
    def trials() -> str:
        parent = s.tune.get("parent_run_id")
        expect(bool(parent), f"the search reported no tracking run: {s.tune}")
        experiment = mlops.tracking.get_experiment_by_name(s.experiment)
        runs = list(mlops.tracking.iter_runs(experiment.id))
        children = [r for r in runs if r.parent_run_id == parent]
        expect(len(children) == N_TRIALS, f"{len(children)} trial runs under {parent}, expected {N_TRIALS}")
        scores = sorted(round(float(r.metrics["score"]), 4) for r in children if "score" in r.metrics)
        return kv(experiment=s.experiment, parent_run=parent, trials=len(children), scores=scores)

    @j.step("best model registered with lineage, production")
    def registered() -> str:
        production = mlops.registry.get_alias(s.model, "production")
        s.version = production.version
        s.registered_accuracy = float(production.metrics.get("accuracy", 0))
        upstream = mlops.registry.lineage(s.model, s.version).model_dump().get("lineage") or {}
        expect(
            upstream.get("pipeline_run_id") == s.run_id, f"lineage {upstream} does not name run {s.run_id}"
        )
        expect(s.registered_accuracy > 0.85, f"registered accuracy {s.registered_accuracy}")
        datasets = [d.get("name") for d in upstream.get("datasets", [])]
        return kv(
            model=s.model,
            version=s.version,
            accuracy=round(s.registered_accuracy, 4),
            lineage_run=s.run_id,
            datasets=datasets,
        )

    @j.step("served: deployment follows production, features from the store")
    def served() -> str:
        mlops.serving.deploy(s.deployment, s.model, alias="production", feature_service=s.feature_service)
        ready = mlops.serving.wait_ready(s.deployment, version=s.version, timeout=LOAD_SECONDS)
        loaded = ready.status.loaded
        assert loaded is not None
        return kv(
            deployment=s.deployment,
            version=loaded.version,
            flavor=loaded.flavor,
            feature_service=s.feature_service,
        )

    @j.step("reference profile of the training split")
    def reference() -> str:
        data = _data(s)
        rows = [dict(zip(data.names, data.X[i], strict=True)) for i in data.train]
        summary = mlops.monitoring.set_reference(s.model, s.version, rows)
        return kv(rows=summary.rows, columns=len(summary.columns))

    @j.step("traffic by entity keys only, labels: live accuracy")
    def traffic() -> str:
        data = _data(s)
        accuracy, s.baseline_ids = _predict_and_label(serving_http, s, data, flip=False)
        expect(accuracy > 0.85, f"served accuracy {accuracy:.3f} on the held-out patients")
        return kv(
            requests=len(s.baseline_ids), accuracy=round(accuracy, 4), via="entities -> feature service"
        )

    @j.step("injected drift (+3 sd on 8 features) and a drop in accuracy")
    def drift() -> str:
        data = _data(s)
        shifted = _shift(mlops, s, data)
        accuracy, s.drift_ids = _predict_and_label(serving_http, s, data, flip=True)
        expect(accuracy < s.registered_accuracy - 0.2, f"accuracy {accuracy:.3f} after the change")
        return kv(
            pushed=shifted,
            shifted=",".join(data.names[:SHIFTED]),
            requests=len(s.drift_ids),
            accuracy=round(accuracy, 4),
            labels="inverted (concept drift)",
        )

    @j.step(LAST)
    def visible() -> str:
        monitoring = mlops.monitoring
        total = len(s.baseline_ids) + len(s.drift_ids)
        wait_for(
            "every served prediction in the prediction log",
            lambda: monitoring.drift(s.model, version=s.version, last="1h").window.count >= total,
            timeout=LOG_SECONDS,
        )
        n = len(s.drift_ids)
        report = monitoring.drift(s.model, version=s.version, last_n=n)
        perf = wait_for(
            "the labels joined",
            lambda: (
                (p := monitoring.performance(s.model, version=s.version, last_n=n)).performance.get(
                    "n_labelled", 0
                )
                >= n
                and p
            ),
            timeout=LOG_SECONDS,
        )
        live = perf.metrics.get("accuracy")
        expect(report.drifted, f"dataset not drifted: {report.dataset}")
        expect(live is not None and live < s.registered_accuracy - 0.2, f"live accuracy {live}")
        alerts = _alert_rules(monitoring, s)
        return kv(
            drifted=f"{len(report.drifted_features)} ({', '.join(report.drifted_features[:3])}, ...)",
            live_accuracy=round(live or 0, 4),
            registered=round(s.registered_accuracy, 4),
            registry_alerts=alerts,
        )


def _data(s: LoopState) -> Dataset:
    assert s.data is not None
    return s.data


def _predict_and_label(http: Any, s: LoopState, data: Dataset, *, flip: bool) -> tuple[float, list[str]]:
    entities = [{"patient_id": data.entity(i)} for i in data.test]
    got = answer(http.post(f"/api/deployments/{s.deployment}/predict", json={"entities": entities}))
    predictions = got["predictions"]
    truth = [data.y[i] if not flip else 1 - data.y[i] for i in data.test]
    correct = sum(int(p["prediction"]) == t for p, t in zip(predictions, truth, strict=True))
    labels = [{"request_id": p["request_id"], "label": t} for p, t in zip(predictions, truth, strict=True)]
    answer(http.post(f"/api/deployments/{s.deployment}/outcomes", json={"outcomes": labels}))
    return correct / len(truth), [p["request_id"] for p in predictions]


def _shift(mlops: Any, s: LoopState, data: Dataset) -> int:
    """Push new values for the held-out patients: the first features moved by 3 standard deviations."""
    import numpy as np

    X = np.asarray(data.X)
    sd = X.std(axis=0)
    now = _iso(datetime.now(UTC))
    rows = []
    for i in data.test:
        values = [v + 3 * sd[k] if k < SHIFTED else v for k, v in enumerate(data.X[i])]
        rows.append(
            {
                "patient_id": data.entity(i),
                "event_timestamp": now,
                **dict(zip(data.names, values, strict=True)),
            }
        )
    return int(mlops.features.push(s.feature_set, rows).online_updated)


def _alert_rules(monitoring: Any, s: LoopState) -> dict[str, str]:
    """The registry's own alert rules on the model, evaluated now: accuracy and drift both fire."""
    data = _data(s)
    monitoring.set_config(
        s.model,
        {
            "monitoring_interval_seconds": 60,
            "window": "1h",
            "alert_rules": [
                {
                    "name": "accuracy-drop",
                    "alert_type": "performance",
                    "severity": "high",
                    "metric_name": "accuracy",
                    "operator": "less_than",
                    "threshold": s.registered_accuracy - 0.1,
                    "duration_minutes": 0,
                },
                {
                    "name": "feature-drift",
                    "alert_type": "drift",
                    "severity": "medium",
                    "metric_name": f"drifted:{data.names[0]}",
                    "operator": ">",
                    "threshold": 0.5,
                    "duration_minutes": 0,
                },
            ],
        },
    )
    monitoring.evaluate(s.model)
    states = {rule["rule"]: rule["state"] for rule in monitoring.alerts(s.model)["rules"]}
    expect(all(v == "firing" for v in states.values()), f"registry alert rules {states}")
    return states


def cleanup(ctx: Context, s: LoopState) -> str:
    mlops, done = ctx.mlops, []
    try:
        mlops.serving.delete_deployment(s.deployment)
        done.append(s.deployment)
    except NotFoundError:
        pass
    try:
        mlops.pipelines.delete_pipeline(s.pipeline)
        done.append(s.pipeline)
    except NotFoundError:
        pass
    try:
        mlops.tracking.delete_experiment(mlops.tracking.get_experiment_by_name(s.experiment).id)
        done.append(f"{s.experiment} (soft)")
    except NotFoundError:
        pass
    for key in s.ab_experiments:
        with contextlib.suppress(ConflictError):  # a canary that ended is stopped already
            mlops.ab_testing.stop(key)
        mlops.ab_testing.archive(key)
        done.append(f"{key} (archived)")
    done.append(delete_created(ctx, s.created).removeprefix("deleted "))
    return f"deleted {', '.join(done)}; {delete_model(ctx, s.model)}"
