"""Model serving: deploy a registered model (following `production`), predict through the
deployment's route, MLflow's /invocations and the Open Inference Protocol v2, model-info, labels,
and every prediction reaching model monitoring."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from mlops_client import NotFoundError

from validation.context import Context, answer
from validation.core import Journey, expect, kv, wait_for
from validation.registry import delete_model

FEATURES = ["f0", "f1", "f2", "f3"]
ROWS = 50
LOAD_SECONDS = 120


def train(path: Any, seed: int = 0) -> tuple[list[list[float]], list[int]]:
    """A small logistic regression on named columns, saved with joblib; its training data."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = random.Random(seed)
    rows = [[round(rng.gauss(0, 1), 4) for _ in FEATURES] for _ in range(500)]
    labels = [int(r[0] - 0.5 * r[3] > 0) for r in rows]
    frame = pd.DataFrame(rows, columns=FEATURES)
    joblib.dump(LogisticRegression().fit(frame, labels), path)
    return rows, labels


@dataclass
class _State:
    model: str
    deployment: str
    rows: list[list[float]] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    ours_is_default: bool = False


def journey(ctx: Context) -> Journey:
    j = Journey("serving", ctx.table)
    s = _State(ctx.name("serving-model"), ctx.name("serving-api"))
    mlops, http = ctx.mlops, ctx.http("model_serving")
    rng = random.Random(3)
    s.rows = [[round(rng.gauss(0, 1), 4) for _ in FEATURES] for _ in range(ROWS)]

    @j.step("register a model with its reference, production")
    def register() -> str:
        path = ctx.scratch / "serving-model.joblib"
        rows, labels = train(path)
        version = mlops.registry.register_model(
            s.model, framework="sklearn", path=path, metrics={"accuracy": 0.95}
        ).version
        reference = [
            dict(zip(FEATURES, r, strict=True)) | {"label": y} for r, y in zip(rows, labels, strict=True)
        ]
        mlops.monitoring.set_reference(s.model, version, reference)
        mlops.registry.set_alias(s.model, "production", version)
        return kv(model=s.model, version=version, alias="production")

    @j.step("deploy it (following production) and wait until loaded")
    def deploy() -> str:
        mlops.serving.deploy(s.deployment, s.model, alias="production")
        ready = mlops.serving.wait_ready(s.deployment, timeout=LOAD_SECONDS)
        loaded = ready.status.loaded
        assert loaded is not None
        return kv(
            deployment=s.deployment,
            version=loaded.version,
            flavor=loaded.flavor,
            load_s=round(loaded.load_seconds, 3),
        )

    @j.step("predict through the deployment's route")
    def predict() -> str:
        answer_ = mlops.serving.predict(s.deployment, s.rows)
        s.request_ids = [p.request_id for p in answer_.predictions]
        versions = {p.model_version for p in answer_.predictions}
        expect(
            len(answer_.predictions) == ROWS and versions == {"1"},
            f"{len(answer_.predictions)} rows, versions {versions}",
        )
        first = answer_.predictions[0]
        return kv(rows=ROWS, first=first.prediction, probability=first.probability, version="1")

    @j.step("MLflow scoring protocol (/invocations)")
    def invocations() -> str:
        body = {"dataframe_split": {"columns": FEATURES, "data": s.rows[:5]}}
        got = answer(http.post(f"/api/deployments/{s.deployment}/invocations", json=body))
        expect(len(got["predictions"]) == 5, f"answer {got}")
        info = answer(http.get("/model-info"))
        s.ours_is_default = info.get("deployment") == s.deployment
        root = "not ours: skipped"
        if s.ours_is_default:
            root_answer = answer(http.post("/invocations", json={"instances": s.rows[:2]}))
            root = f"{len(root_answer['predictions'])} predictions"
        return kv(predictions=got["predictions"], root_invocations=root)

    @j.step("Open Inference Protocol v2 (metadata, infer)")
    def oip() -> str:
        meta = answer(http.get(f"/v2/models/{s.deployment}"))
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, len(FEATURES)],
                    "datatype": "FP64",
                    "data": [v for row in s.rows[:2] for v in row],
                }
            ]
        }
        got = answer(http.post(f"/v2/models/{s.deployment}/infer", json=body))
        outputs = {o["name"]: o["data"] for o in got["outputs"]}
        expect(bool(outputs) and all(len(v) >= 2 for v in outputs.values()), f"outputs {got['outputs']}")
        return kv(model=meta.get("name"), versions=meta.get("versions"), outputs=list(outputs))

    @j.step("model-info and the documents' /predict")
    def model_info() -> str:
        info = mlops.serving.model_info(s.deployment)
        expect(info["model_name"] == s.model and info["model_version"] == "1", f"model-info {info}")
        root = "default deployment is another one: skipped"
        if s.ours_is_default:
            one = answer(http.post("/predict", json={"features": s.rows[0]}))
            root = f"prediction={one['prediction']} version={one['model_version']}"
        return kv(flavor=info["flavor"], state=info["state"], root_predict=root)

    @j.step("labels, and every prediction in model monitoring")
    def monitoring() -> str:
        labels = [
            {"request_id": rid, "label": int(r[0] - 0.5 * r[3] > 0)}
            for rid, r in zip(s.request_ids, s.rows, strict=True)
        ]
        accepted = mlops.serving.outcomes(s.deployment, labels)
        expect(accepted.labels == ROWS, f"outcomes {accepted}")
        drift = wait_for(
            "the served predictions in model monitoring",
            lambda: (d := mlops.monitoring.drift(s.model, version="1", last="1h")).window.count >= ROWS and d,
            timeout=60,
        )
        perf = wait_for(
            "the labels joined to the logged predictions",
            lambda: (
                (p := mlops.monitoring.performance(s.model, version="1", last="1h")).performance.get(
                    "n_labelled", 0
                )
                >= ROWS
                and p
            ),
            timeout=60,
        )
        return kv(
            logged=drift.window.count,
            drifted=drift.drifted,
            labelled=perf.performance.get("n_labelled"),
            live_accuracy=perf.metrics.get("accuracy"),
        )

    @j.on_cleanup("clean up the test deployment and model")
    def cleanup() -> str:
        try:
            mlops.serving.delete_deployment(s.deployment)
            gone = f"deleted {s.deployment}"
        except NotFoundError:
            gone = "no deployment"
        return f"{gone}; {delete_model(ctx, s.model)}"

    return j
