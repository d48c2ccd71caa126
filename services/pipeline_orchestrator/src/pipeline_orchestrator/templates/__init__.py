"""Pipeline templates shipped with the orchestrator.

``training_pipeline()`` is the training template (``training_pipeline.json``, callables in
:mod:`pipeline_orchestrator.templates.training`): load a scikit-learn dataset → validate → hyper-
parameter search → train → evaluate → log to experiment tracking → register if it beats the
``production`` version. Load it with ``POST /api/pipelines`` (the JSON file works as it is) and
start it with ``POST /api/pipelines/train-classifier/runs``; ``scripts/dev/run_training_pipeline.py``
does both against the services of ``make run``.

The hpo task's ``n_trials``, ``parallelism`` and ``experiment`` are fields of the definition, which
the orchestrator does not template (``{{ params.x }}`` only reaches ``inputs`` and the shell/http
fields), so they are not run parameters: change them here, which makes a new pipeline version.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["TRAINING_PIPELINE_FILE", "training_pipeline"]

TRAINING_PIPELINE_FILE = "training_pipeline.json"


@cache
def _training_definition() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(TRAINING_PIPELINE_FILE).read_text(encoding="utf-8")
    definition: dict[str, Any] = json.loads(text)
    return definition


def training_pipeline(
    name: str = "train-classifier",
    *,
    n_trials: int | None = None,
    parallelism: int | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """The training pipeline definition (a fresh copy), ready for ``POST /api/pipelines``.

    ``n_trials`` / ``parallelism`` override the search's size (8 trials, 4 at a time) and
    ``experiment`` the tracking experiment of the trials and the final run ("training-pipeline").
    """
    definition = copy.deepcopy(_training_definition())
    definition["name"] = name
    tasks = {task["name"]: task for task in definition["tasks"]}
    tune = tasks["tune"]
    if n_trials is not None:
        tune["n_trials"] = int(n_trials)
    if parallelism is not None:
        tune["parallelism"] = int(parallelism)
    if experiment is not None:
        tune["experiment"] = experiment
        tasks["log"]["inputs"]["experiment"] = experiment
    return definition
