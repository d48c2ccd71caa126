"""Built-in ``platform`` steps: the closed loop's arrows, each a real call through ``mlops_client``.

Service URLs and the API key come from the environment as the client reads them
(``MLOPS_MODEL_REGISTRY_URL``, ``MLOPS_EXPERIMENT_TRACKING_URL``, ``MLOPS_FEATURE_STORE_URL``,
``MLOPS_AB_TESTING_URL``, ``MLOPS_API_KEY``; the payload's ``env`` is applied on top).

Steps and their outputs:

- ``log_to_tracking`` → ``{"run_id", "experiment_id", "experiment", "run_name"}``
- ``register_model`` → ``{"registered": true, "name", "version", "uri", ...}`` or, when
  ``only_if_better`` finds the current version at least as good, ``{"registered": false, "reason",
  "current_version", "current_value", ...}``
- ``fetch_training_data`` → ``{"dataset_uri", "rows", "columns", "format", "feature_sets"}``
- ``start_canary`` → ``{"experiment_id", "name", "status", "control_version", "canary_version", ...}``

One module per step (``tracking``, ``registration``, ``training_data``, ``canary``), the step
dispatcher in ``dispatch`` and what they share in ``clients``. Also here (``hpo``), for the engine's
hpo controller: :func:`tracking_enabled`, :func:`start_parent_run`
and :func:`end_parent_run` (trials are nested under the parent run they are given).
"""

from __future__ import annotations

from pipeline_orchestrator.worker.platform_steps.canary import CANARY_STAGES, start_canary
from pipeline_orchestrator.worker.platform_steps.clients import (
    ab_testing_client,
    experiment_id,
    feature_store_client,
    lineage_tags,
    registry_client,
    tracking_client,
)
from pipeline_orchestrator.worker.platform_steps.dispatch import STEPS, run_step
from pipeline_orchestrator.worker.platform_steps.hpo import (
    end_parent_run,
    start_parent_run,
    start_trial_run,
    tracking_enabled,
)
from pipeline_orchestrator.worker.platform_steps.registration import register_model
from pipeline_orchestrator.worker.platform_steps.tracking import log_to_tracking
from pipeline_orchestrator.worker.platform_steps.training_data import fetch_training_data

__all__ = [
    "CANARY_STAGES",
    "STEPS",
    "ab_testing_client",
    "end_parent_run",
    "experiment_id",
    "feature_store_client",
    "fetch_training_data",
    "lineage_tags",
    "log_to_tracking",
    "register_model",
    "registry_client",
    "run_step",
    "start_canary",
    "start_parent_run",
    "start_trial_run",
    "tracking_client",
    "tracking_enabled",
]
