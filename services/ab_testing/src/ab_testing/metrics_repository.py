"""The Prometheus collector's reads (at scrape time, cached by the collector)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ab_testing.tables import Decision, Experiment, ExposureCount, Status


def recent_experiments(session: Session, limit: int) -> list[Experiment]:
    """The `limit` most recently updated experiments not archived."""
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.status != Status.ARCHIVED)
            .order_by(Experiment.updated_at.desc())
            .limit(limit)
        )
    )


def current_exposures(session: Session, experiments: list[Experiment]) -> dict[tuple[str, str], int]:
    """{(experiment id, variant): users} of each experiment's current phase."""
    phases = {e.id: e.phase for e in experiments}
    rows = session.execute(
        select(
            ExposureCount.experiment_id, ExposureCount.phase, ExposureCount.variant, ExposureCount.users
        ).where(ExposureCount.experiment_id.in_(list(phases)))
    )
    return {(eid, variant): users for eid, phase, variant, users in rows if phases[eid] == phase}


def decision_counts(session: Session, ids: list[str]) -> dict[str, dict[str, int]]:
    """{experiment id: {kind: decisions}}."""
    rows = session.execute(
        select(Decision.experiment_id, Decision.kind, func.count())
        .where(Decision.experiment_id.in_(ids))
        .group_by(Decision.experiment_id, Decision.kind)
    )
    out: dict[str, dict[str, int]] = {}
    for eid, kind, count in rows:
        out.setdefault(eid, {})[kind] = count
    return out
