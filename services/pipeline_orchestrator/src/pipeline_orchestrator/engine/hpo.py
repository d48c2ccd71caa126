"""The hyper-parameter search controller: an ``hpo`` task runs its trials as child tasks.

Optuna samples; the database is the study. Each time the controller needs new trials it rebuilds
an in-memory study from the trials recorded so far (their params, values and states) and asks
it for the next ones, so a restarted orchestrator continues the search where it was. The sampler
is seeded with the task's seed (or the run id) plus the number of trials so far: reproducible,
and never the same random start twice.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any

from pipeline_orchestrator.spec import SearchDimension, TaskSpec
from pipeline_orchestrator.tables import TaskInstance, TaskState

log = logging.getLogger("mlops.orchestrator.hpo")


def trial_name(task: str, number: int) -> str:
    return f"{task}[{number}]"


def distributions(space: dict[str, SearchDimension]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.type == "int":
            assert dim.low is not None and dim.high is not None
            step = int(dim.step or 1)
            out[name] = IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=1 if dim.log else step)
        elif dim.type == "float":
            assert dim.low is not None and dim.high is not None
            out[name] = FloatDistribution(dim.low, dim.high, log=dim.log, step=None if dim.log else dim.step)
        else:
            out[name] = CategoricalDistribution(list(dim.choices or []))
    return out


def _seed(task: TaskSpec, run_id: str, asked: int) -> int:
    base = task.seed if task.seed is not None else int(hashlib.sha256(run_id.encode()).hexdigest()[:8], 16)
    return (base + asked * 7919) % (2**31)


def ask(task: TaskSpec, run_id: str, trials: list[TaskInstance], count: int) -> list[dict[str, Any]]:
    """``count`` new parameter sets given the trials so far."""
    import optuna
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert task.search_space is not None
    dists = distributions(task.search_space)
    sampler = optuna.samplers.TPESampler(
        seed=_seed(task, run_id, len(trials)),
        n_startup_trials=min(10, max(2, task.n_trials // 3)),
        constant_liar=True,
    )
    study = optuna.create_study(direction=task.direction, sampler=sampler)
    for t in trials:
        params = (t.data or {}).get("params") or {}
        if set(params) != set(dists):
            continue
        value = (t.outputs or {}).get("value") if t.state == TaskState.SUCCEEDED else None
        if value is not None and math.isfinite(float(value)):
            study.add_trial(create_trial(params=params, distributions=dists, value=float(value)))
        elif t.state in TaskState.DONE:
            study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.FAIL))
        else:
            study.add_trial(create_trial(params=params, distributions=dists, state=TrialState.RUNNING))
    asked = []
    for _ in range(count):
        trial = study.ask(dists)
        asked.append(dict(trial.params))
    return asked


def summarize(task: TaskSpec, trials: list[TaskInstance], parent_run_id: str | None) -> dict[str, Any] | None:
    """The hpo task's outputs once every trial is done, or None when no trial succeeded."""
    scored = [
        (float(t.outputs["value"]), t)
        for t in trials
        if t.state == TaskState.SUCCEEDED and t.outputs and t.outputs.get("value") is not None
    ]
    if not scored:
        return None
    pick = max if task.direction == "maximize" else min
    best_value, best = pick(scored, key=lambda pair: pair[0])
    return {
        "best_params": (best.data or {}).get("params", {}),
        "best_value": best_value,
        "best_trial": (best.data or {}).get("number"),
        "best_run_id": (best.outputs or {}).get("run_id"),
        "metric": task.metric,
        "direction": task.direction,
        "n_trials": len(trials),
        "n_failed": sum(1 for t in trials if t.state != TaskState.SUCCEEDED),
        "parent_run_id": parent_run_id,
        "trials": [
            {
                "number": (t.data or {}).get("number"),
                "params": (t.data or {}).get("params"),
                "value": (t.outputs or {}).get("value"),
                "state": t.state,
            }
            for t in sorted(trials, key=lambda t: (t.data or {}).get("number", 0))
        ],
    }
