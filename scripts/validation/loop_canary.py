"""The loop's release steps: the retraining run's candidate canaried on live prediction traffic
through model serving, promoted by the canary (registry alias; serving hot-swaps), and a worse
candidate rolled back on its own.

Both candidates come from the platform's training template with `rollout: canary`: the better one
is the retraining policy's run (trained on the changed world with its new labels, see
`loop_later`), the worse one a run of the same pipeline trained on the changed features with the
stale labels (offline it scores as well as the better one, on its own stale test split; live
traffic says otherwise). The template's canary step starts each canary; the A/B testing service's
controller judges the guardrail on the outcomes sent back through serving.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from validation.context import Context, answer
from validation.core import CheckFailed, Journey, expect, kv, wait_for
from validation.loop_later import CANARY, RETRAIN_SECONDS, RETRAINED, Retraining, changed_world
from validation.loop_steps import LoopState

ROLLOUT_SECONDS = 90
SWAP_SECONDS = 45  # serving re-reads experiments and aliases every 2 s
ROUTED_SECONDS = 60
CANARIED = "its candidate canaried on live traffic"
PROMOTED = "promoted by the canary: production moves, serving hot-swaps"


@dataclass
class Candidates:
    better: str = ""
    worse: str = ""
    canary: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    round: int = 0
    split: dict[str, int] | None = None
    mislabelled: Counter[str] = field(default_factory=Counter)
    """`variant: version served` for answers whose version is not their variant's."""


def add_steps(j: Journey, ctx: Context, s: LoopState, r: Retraining) -> None:
    c = Candidates()
    mlops, serving = ctx.mlops, ctx.http("model_serving")

    @j.step(CANARIED, needs=RETRAINED)
    def canary() -> str:
        c.better, c.canary = r.candidate, r.canary
        c.versions, c.mislabelled = {"control": s.version, "canary": c.better}, Counter()
        routed = _routed(ctx, s, c)
        served = _traffic(serving, s, c)
        expect(set(served) == {s.version, c.better}, f"versions served {dict(served)}")
        return kv(
            experiment=c.canary,
            candidate=f"{c.better} (run {r.run_id})",
            baseline=s.version,
            routed_after_s=routed,
            served=dict(served),
            wrong_version_answers=dict(c.mislabelled) or None,
        )

    @j.step(PROMOTED, needs=CANARIED)
    def promoted() -> str:
        decisions = _roll(ctx, s, c, until="promote")
        production = _production(ctx, s, c.better, "production moved to the candidate")
        ready = mlops.serving.wait_ready(s.deployment, version=c.better, timeout=60)
        started = time.monotonic()
        served = _only(serving, s, c, c.better, "every request served by the promoted candidate")
        loaded = ready.status.loaded
        return kv(
            decisions=decisions,
            production=production,
            serving=loaded.version if loaded else None,
            served=dict(served),
            all_on_candidate_after_s=round(time.monotonic() - started, 1),
        )

    @j.step("a worse candidate (retrained on stale labels) is rolled back on its own", needs=PROMOTED)
    def rolled_back() -> str:
        run_id, c.worse, c.canary = _worse_run(ctx, s)
        c.versions, c.mislabelled = {"control": c.better, "canary": c.worse}, Counter()
        _routed(ctx, s, c)
        decisions = _roll(ctx, s, c, until="rollback")
        production = _production(ctx, s, c.better, "production still on the promoted version")
        started = time.monotonic()
        served = _only(serving, s, c, c.better, "every request back on the baseline")
        return kv(
            run=run_id,
            worse=c.worse,
            split_during_canary=c.split,
            wrong_version_answers=dict(c.mislabelled) or None,
            decisions=decisions,
            production=production,
            served=dict(served),
            all_on_baseline_after_s=round(time.monotonic() - started, 1),
        )


def _worse_run(ctx: Context, s: LoopState) -> tuple[str, str, str]:
    """A run of the training pipeline on the changed features with the stale labels, canary rollout."""
    assert s.data is not None
    pipelines = ctx.mlops.pipelines
    parameters = {
        "model_name": s.model,
        "data_uri": changed_world(ctx, s.data, new_labels=False),
        "label_column": "label",
        "only_if_better": False,
        **CANARY,
    }
    done = pipelines.wait_for_run(
        pipelines.trigger(s.pipeline, parameters).id, timeout=RETRAIN_SECONDS, poll_interval=1.0
    )
    tasks = {t.name: t.outputs for t in done.tasks}
    expect(tasks["canary"].get("started") is True, f"run {done.id} started no canary: {tasks['canary']}")
    key = str(tasks["canary"]["key"])
    s.ab_experiments.append(key)
    return done.id, str(tasks["register"]["version"]), key


def _routed(ctx: Context, s: LoopState, c: Candidates) -> float:
    """Seconds until serving routes the canary (once both versions are loaded)."""
    serving, started = ctx.http("model_serving"), time.monotonic()

    def routing() -> bool:
        status = answer(serving.get(f"/api/deployments/{s.deployment}"))["status"]
        return bool(
            status.get("experiment") == c.canary
            and not status.get("experiment_waiting_for")
            and c.versions["canary"] in (status.get("variants") or {}).values()
        )

    wait_for(f"serving routing {c.canary}", routing, timeout=ROUTED_SECONDS)
    return round(time.monotonic() - started, 1)


def _traffic(serving: Any, s: LoopState, c: Candidates) -> Counter[str]:
    """One request per held-out patient, each a new user; outcomes (correct or not, in the changed
    world) back through serving. Versions served, counted."""
    data = s.data
    assert data is not None
    c.round += 1
    entities = [{"patient_id": data.entity(i), "user_id": f"{c.canary}-r{c.round}-{i}"} for i in data.test]
    got = answer(serving.post(f"/api/deployments/{s.deployment}/predict", json={"entities": entities}))
    truth = [1 - data.y[i] for i in data.test]
    outcomes = [
        {
            "request_id": p["request_id"],
            "metric": "correct",
            "value": int(int(p["prediction"]) == t),
            "label": t,
        }
        for p, t in zip(got["predictions"], truth, strict=True)
    ]
    answer(serving.post(f"/api/deployments/{s.deployment}/outcomes", json={"outcomes": outcomes}))
    for p in got["predictions"]:
        variant = p.get("variant")
        if variant in c.versions and c.versions[variant] != p["model_version"]:
            c.mislabelled[f"{variant} ({c.versions[variant]}) served by {p['model_version']}"] += 1
    return Counter(p["model_version"] for p in got["predictions"])


def _production(ctx: Context, s: LoopState, version: str, what: str) -> str:
    """The canary moves the alias after recording its decision: wait for the registry to show it."""
    registry = ctx.mlops.registry
    try:
        wait_for(
            what, lambda: registry.get_alias(s.model, "production").version == version, timeout=SWAP_SECONDS
        )
    except TimeoutError as exc:
        raise TimeoutError(
            f"{exc}: production is {registry.get_alias(s.model, 'production').version}"
        ) from None
    return version


def _only(serving: Any, s: LoopState, c: Candidates, version: str, what: str) -> Counter[str]:
    """Traffic until every request is served by `version` (serving learns of the experiment's end
    from the A/B service and of the alias from the registry, each within seconds)."""
    last: list[Counter[str]] = []

    def one_version() -> Counter[str] | None:
        last[:] = [_traffic(serving, s, c)]
        return last[0] if set(last[0]) == {version} else None

    try:
        served: Counter[str] = wait_for(what, one_version, timeout=SWAP_SECONDS, interval=0.5)
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; last served {dict(last[0]) if last else {}}") from None
    return served


def _roll(ctx: Context, s: LoopState, c: Candidates, *, until: str) -> list[str]:
    """Traffic and a controller check, again, until the canary decides `until`."""
    ab, serving = ctx.mlops.ab_testing, ctx.http("model_serving")

    c.split = None

    other = "promote" if until == "rollback" else "rollback"

    def decided() -> list[str]:
        served = _traffic(serving, s, c)
        c.split = c.split or dict(served)
        ab.evaluate_rollout(c.canary)
        kinds = [d.kind for d in ab.decisions(c.canary)]
        if any(other in k for k in kinds):
            raise CheckFailed(
                f"the canary decided {kinds} (not {until}); answers whose version is not their "
                f"variant's: {dict(c.mislabelled) or 'none'}"
            )
        return kinds if any(until in k for k in kinds) else []

    return list(wait_for(f"the canary's {until}", decided, timeout=ROLLOUT_SECONDS, interval=0.5))
