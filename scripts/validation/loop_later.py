"""The loop's retraining steps: a retraining policy for the model, the alert firing in Prometheus
and routed by AlertManager to the orchestrator (which retrains through the policy), the policy's
own evaluation of drift and performance, and the retraining run it started.

The retraining run is the platform's training template (`rollout: canary`) trained on the changed
world the loop collected: every patient with the drifted features and the new labels, as a CSV
table uploaded to the orchestrator (`data_uri`, an `mlops-artifacts://` URI). Its register step
registers the candidate and its canary step starts a canary rollout of it against `production`;
`loop_canary` then drives live traffic through it.

The Prometheus and AlertManager steps look for `MLOPS_PROMETHEUS_URL` / `MLOPS_ALERTMANAGER_URL`
(`make monitor`); without them they fail with "not available", or are left out with
`--without-alerting`.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from mlops_client import NotFoundError

from validation.context import Context, answer
from validation.core import Journey, NotAvailable, expect, kv, wait_for
from validation.loop_steps import LAST, SHIFTED, Dataset, LoopState

ALERT_SECONDS = 180
RETRAIN_SECONDS = 600
SETTLE_SECONDS = 60
ALERTNAMES = ("ModelDrift", "ModelPerformanceDegradation", "ModelMonitoringAlertFiring")
POLICY = "retraining policy for the model: drift and performance triggers, rollout canary"
TRIGGERED = "retraining triggered: the recorded trigger, its evidence and its run"
RETRAINED = "the retraining run: trained on the changed data, registered, canary started"
CANARY = {  # the template's canary parameters: short stages, judged after 20 outcomes per variant
    "rollout": "canary",
    "canary_stages": [50, 100],
    "canary_stage_seconds": 0.001,
    "canary_min_samples": 20,
    "canary_metric": "correct",
}


@dataclass
class Retraining:
    """What the retraining steps found, for the canary steps."""

    run_id: str = ""
    candidate: str = ""
    canary: str = ""
    triggers: list[dict[str, Any]] = field(default_factory=list)
    alert_run_id: str = ""
    """the run AlertManager's alert started (with alerting)"""
    policy_body: dict[str, Any] = field(default_factory=dict)
    watched: dict[str, Any] = field(default_factory=dict)
    """the policy's drift and performance triggers"""


def prometheus_url() -> str:
    return os.environ.get("MLOPS_PROMETHEUS_URL", "http://127.0.0.1:9090").rstrip("/")


def alertmanager_url() -> str:
    return os.environ.get("MLOPS_ALERTMANAGER_URL", "http://127.0.0.1:9093").rstrip("/")


def _get(url: str, what: str, **params: Any) -> Any:
    try:
        response = httpx.get(url, params=params, timeout=5)
    except httpx.HTTPError as exc:
        raise NotAvailable(f"no {what} answers at {url} ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise NotAvailable(f"{what} at {url} answered {response.status_code}")
    return response.json()


def probe_prometheus() -> None:
    """Prometheus reachable, with a model drift/performance alert rule loaded."""
    url = prometheus_url()
    rules = _get(f"{url}/api/v1/rules", "Prometheus (MLOPS_PROMETHEUS_URL; `make monitor` starts one)")
    names = {
        r.get("name") for g in rules["data"]["groups"] for r in g["rules"] if r.get("type") == "alerting"
    }
    if not names & set(ALERTNAMES):
        raise NotAvailable(f"Prometheus at {url} has no model alert rule ({', '.join(ALERTNAMES)})")


def probe_alertmanager() -> None:
    _get(f"{alertmanager_url()}/api/v2/status", "AlertManager (MLOPS_ALERTMANAGER_URL)")


def changed_world(ctx: Context, data: Dataset, *, new_labels: bool) -> str:
    """Every patient as the world is now (the first features moved by +3 sd), labelled with the new
    labels (what retraining should learn) or the old ones (stale labels: a worse candidate), as a
    CSV uploaded to the orchestrator: its `mlops-artifacts://` URI, which any worker reads (local
    processes, Celery, Kubernetes jobs)."""
    import numpy as np

    X = np.asarray(data.X)
    X[:, :SHIFTED] += 3 * X.std(axis=0)[:SHIFTED]
    path = Path(ctx.scratch) / f"patients-{'new' if new_labels else 'stale'}-labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*data.names, "label"])
        for row, y in zip(X.round(6).tolist(), data.y, strict=True):
            writer.writerow([*row, 1 - y if new_labels else y])
    uploaded: dict[str, Any] = ctx.mlops.pipelines.upload(path, name=ctx.name(path.name))
    return str(uploaded["uri"])


def add_steps(j: Journey, ctx: Context, s: LoopState, r: Retraining) -> None:
    orchestrator = ctx.http("pipeline_orchestrator")
    policy_path = f"/api/retraining-policies/{s.model}"

    @j.step(POLICY, needs=LAST)
    def policy() -> str:
        assert s.data is not None
        data_uri = changed_world(ctx, s.data, new_labels=True)
        parameters = {
            "model_name": s.model,
            "data_uri": data_uri,
            "label_column": "label",
            "only_if_better": False,  # the changed world's offline score is no match for the old one's
            **CANARY,
        }
        body = {
            "pipeline": s.pipeline,
            "parameters": parameters,
            "cooldown_seconds": 600,
            "evaluation_interval_seconds": 3600,
            "alerts": True,
        }
        r.watched = {
            "performance": {
                "metric": "accuracy",
                "threshold": round(s.registered_accuracy - 0.1, 4),
                "window_minutes": 60,
                "min_samples": 30,
            },
            "drift": {"threshold": 0.1, "measure": "share", "window_minutes": 60},
        }
        r.policy_body = body
        # With Prometheus and AlertManager watching, the alert is what starts the retraining: the
        # policy's own drift and performance triggers are added after it (they would fire at once).
        got = answer(orchestrator.put(policy_path, json=body if ctx.alerting else {**body, **r.watched}))
        s.policy = True
        threshold = r.watched["performance"]["threshold"]
        return kv(
            model=got["model"],
            pipeline=got["pipeline"],
            alerts="AlertManager alerts labelled model= retrain it",
            performance=f"accuracy < {threshold} over 60m" + (" (after the alert)" if ctx.alerting else ""),
            drift="share of drifted features > 0.1 over 60m",
            rollout="canary 50% -> 100%, guardrail 'correct'",
            data=data_uri,
        )

    if ctx.alerting:

        @j.step("alert firing in Prometheus", probe=probe_prometheus, needs=POLICY)
        def prometheus() -> str:
            url = prometheus_url()

            def firing() -> list[dict[str, Any]]:
                alerts = _get(f"{url}/api/v1/alerts", "Prometheus")["data"]["alerts"]
                return [a for a in alerts if a["labels"].get("model") == s.model and a["state"] == "firing"]

            alerts = wait_for(
                f"a firing alert for {s.model} in Prometheus", firing, timeout=ALERT_SECONDS, interval=2
            )
            return kv(
                alerts=[(a["labels"]["alertname"], a["labels"].get("rule")) for a in alerts],
                since=alerts[0].get("activeAt"),
            )

        @j.step(
            "routed by AlertManager; the orchestrator retrains from the alert",
            probe=probe_alertmanager,
            needs=POLICY,
        )
        def alertmanager() -> str:
            url = alertmanager_url()

            def routed() -> list[dict[str, Any]]:
                alerts = _get(f"{url}/api/v2/alerts", "AlertManager", filter=f'model="{s.model}"')
                return [a for a in alerts if any("retrain" in x["name"] for x in a.get("receivers", []))]

            alerts = wait_for(
                f"{s.model}'s alert at a retraining receiver", routed, timeout=ALERT_SECONDS, interval=2
            )
            started = wait_for(
                "a retraining run started from AlertManager's alert (source alertmanager)",
                lambda: [
                    t
                    for t in _triggers(orchestrator, s.model)
                    if t["source"] == "alertmanager" and t["decision"] == "started"
                ],
                timeout=ALERT_SECONDS,
                interval=2,
            )
            first = started[-1]
            r.alert_run_id = str(first["run_id"])
            return kv(
                run=first["run_id"],
                trigger=f"{first['kind']} {first['decision']}: {_evidence(first['evidence'])}",
                alerts=sorted({a["labels"].get("alertname") for a in alerts}),
                receivers=sorted({x["name"] for a in alerts for x in a["receivers"]}),
            )

    @j.step(TRIGGERED, needs=POLICY)
    def triggered() -> str:
        if ctx.alerting:  # the policy's own triggers now: they fire too, and start no second run
            answer(orchestrator.put(policy_path, json={**r.policy_body, **r.watched}))
        evaluation = answer(orchestrator.post(f"{policy_path}/evaluate"))
        fired = {sig["kind"]: sig for sig in evaluation["signals"] if sig.get("fired")}
        expect({"drift", "performance"} <= set(fired), f"signals {evaluation['signals']}")
        triggers = _triggers(orchestrator, s.model)
        started = [t for t in triggers if t["decision"] == "started"]
        expect(len(started) == 1, f"{len(started)} triggers started a run: {triggers}")
        r.triggers, r.run_id = triggers, started[0]["run_id"]
        if ctx.alerting:
            expect(r.run_id == r.alert_run_id, f"run {r.run_id} is not the alert's {r.alert_run_id}")
        run = ctx.mlops.pipelines.get_run(r.run_id)
        expect(run.pipeline == s.pipeline, f"run {r.run_id} is of {run.pipeline}")
        others = Counter(
            f"{t['kind']}/{t['source']}: {t['decision']}" for t in triggers if t is not started[0]
        )
        return kv(
            run=r.run_id,
            run_trigger=run.trigger,
            trigger=f"{started[0]['kind']} from {started[0]['source']}",
            evidence=_evidence(started[0]["evidence"]),
            performance=_evidence(fired["performance"]),
            drift=_evidence(fired["drift"]),
            others=dict(others),
        )

    @j.step(RETRAINED, needs=TRIGGERED)
    def retrained() -> str:
        done = ctx.mlops.pipelines.wait_for_run(r.run_id, timeout=RETRAIN_SECONDS, poll_interval=1.0)
        tasks = {t.name: t.outputs for t in done.tasks}
        registered, canary, load = tasks["register"], tasks["canary"], tasks["load"]
        expect(registered.get("registered") is True, f"the run registered nothing: {registered}")
        expect(canary.get("started") is True, f"the run started no canary: {canary}")
        r.candidate, r.canary = str(registered["version"]), str(canary["key"])
        s.ab_experiments.append(r.canary)
        production = ctx.mlops.registry.get_alias(s.model, "production").version
        expect(production == s.version, f"production moved to {production} before the canary")
        settled = wait_for(
            "the trigger linked to what its run produced",
            lambda: [
                t
                for t in _triggers(orchestrator, s.model)
                if t["run_id"] == r.run_id and t["produced_version"] == r.candidate
            ],
            timeout=SETTLE_SECONDS,
            interval=1,
        )
        return kv(
            run=f"{done.id} {done.state}",
            trained_on=f"{load.get('dataset')} ({load.get('n_train')} train rows)",
            reference_rows=registered.get("reference_rows"),
            test_accuracy=round(float(tasks["evaluate"]["metrics"]["accuracy"]), 4),
            candidate=r.candidate,
            production=production,
            canary=r.canary,
            split=f"control {canary.get('control_version')} / canary {canary.get('canary_version')}",
            trigger_produced=settled[0]["produced_version"],
        )


def _triggers(orchestrator: httpx.Client, model: str) -> list[dict[str, Any]]:
    page = answer(orchestrator.get(f"/api/retraining-policies/{model}/triggers", params={"limit": 100}))
    items: list[dict[str, Any]] = page["items"]
    return items


def _evidence(e: dict[str, Any]) -> str:
    if "alertname" in e:  # an AlertManager alert: its rule and the series it fired on
        labels = e.get("labels") or {}
        on = ", ".join(f"{k}={labels[k]}" for k in ("version", "metric") if k in labels)
        return f"alert {e['alertname']} ({on})"
    value = e.get("value")
    shown = round(value, 4) if isinstance(value, float) else value
    return f"{e.get('metric')}={shown} vs {e.get('threshold')} over {e.get('window')} (v{e.get('version')})"


def cleanup(ctx: Context, s: LoopState) -> str:
    if not s.policy:
        return "no retraining policy"
    try:
        answer(ctx.http("pipeline_orchestrator").delete(f"/api/retraining-policies/{s.model}"))
    except NotFoundError:
        return "no retraining policy"
    return f"retraining policy {s.model}"
