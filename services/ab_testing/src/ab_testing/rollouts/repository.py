"""Every SQL statement of the rollouts (bandits, canaries, promotions). Flushes, never commits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ab_testing.experiments import repository as experiments
from ab_testing.tables import Experiment, MetricStats, Status

# what rollouts share with the experiments' repository
phase = experiments.phase
decision = experiments.decision
delete_decision = experiments.delete_decision
flush = experiments.flush


def metric_stats(session: Session, experiment_id: str, phase_number: int) -> Sequence[MetricStats]:
    query = select(MetricStats).where(
        MetricStats.experiment_id == experiment_id, MetricStats.phase == phase_number
    )
    return session.scalars(query).all()


def running_rollouts(session: Session) -> Sequence[str]:
    """Ids of the running bandits and canaries."""
    query = select(Experiment.id).where(
        Experiment.status == Status.RUNNING, Experiment.mode.in_(("bandit", "canary"))
    )
    return session.scalars(query).all()


def stopped_canaries(session: Session) -> list[tuple[str, dict[str, Any] | None]]:
    """(id, config) of every stopped canary: an alias move may still be pending on one."""
    query = select(Experiment.id, Experiment.config).where(
        Experiment.status == Status.STOPPED, Experiment.mode == "canary"
    )
    return [(row[0], row[1]) for row in session.execute(query).all()]
