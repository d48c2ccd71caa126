"""Analysis's reads: a phase, the variants' sufficient statistics and the users' aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ab_testing.tables import MetricStats, Phase, UserMetric


def metric_stats_rows(session: Session, experiment_id: str, phase: int) -> Sequence[MetricStats]:
    return session.scalars(
        select(MetricStats).where(MetricStats.experiment_id == experiment_id, MetricStats.phase == phase)
    ).all()


def phase(session: Session, experiment_id: str, number: int) -> Phase | None:
    return session.scalar(select(Phase).where(Phase.experiment_id == experiment_id, Phase.number == number))


def user_totals(session: Session, experiment_id: str, phase: int, metric: str, variant: str) -> Sequence[Any]:
    """(total, events) of the variant's users with events of the metric."""
    return session.execute(
        select(UserMetric.total, UserMetric.events).where(
            UserMetric.experiment_id == experiment_id,
            UserMetric.phase == phase,
            UserMetric.metric == metric,
            UserMetric.variant == variant,
            UserMetric.events > 0,
        )
    ).all()
