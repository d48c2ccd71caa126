"""Executors: where task attempts run (see pipeline_orchestrator.protocol)."""

from __future__ import annotations

from pipeline_orchestrator.protocol import Executor
from pipeline_orchestrator.settings import OrchestratorSettings


def build_executor(settings: OrchestratorSettings) -> Executor:
    if settings.executor == "celery":
        from pipeline_orchestrator.executors.celery import CeleryExecutor

        return CeleryExecutor(settings)
    if settings.executor == "kubernetes":
        from pipeline_orchestrator.executors.kubernetes import KubernetesExecutor

        return KubernetesExecutor(settings)
    from pipeline_orchestrator.executors.local import LocalExecutor

    return LocalExecutor(settings)
