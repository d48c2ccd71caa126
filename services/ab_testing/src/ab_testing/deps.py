"""Load-or-404 dependencies shared by the A/B testing routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from mlops_kit.deps import SessionDep, is_read

from ab_testing.experiments import service
from ab_testing.schemas import ExperimentPath
from ab_testing.tables import Experiment


def _experiment(experiment: ExperimentPath, request: Request, session: SessionDep) -> Experiment:
    # a write locks the row before anything is read: concurrent changes of one experiment (an
    # update, a lifecycle step, overrides of one user) apply one after the other
    return service.get_experiment(session, experiment, lock=not is_read(request))


ExperimentDep = Annotated[Experiment, Depends(_experiment)]
