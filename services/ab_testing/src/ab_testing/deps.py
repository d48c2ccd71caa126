"""Load-or-404 dependencies shared by the A/B testing routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from mlops_kit.deps import SessionDep, is_read

from ab_testing.experiments import service
from ab_testing.schemas import REF_MAX, USER_ID_MAX
from ab_testing.tables import Experiment

ExperimentPath = Annotated[
    str, Path(min_length=1, max_length=REF_MAX, description="the experiment's id or key")
]
UserPath = Annotated[str, Path(min_length=1, max_length=USER_ID_MAX, description="the user's id")]


def _experiment(experiment: ExperimentPath, request: Request, session: SessionDep) -> Experiment:
    # a write locks the row before anything is read: concurrent changes of one experiment (an
    # update, a lifecycle step, overrides of one user) apply one after the other
    return service.get_experiment(session, experiment, lock=not is_read(request))


ExperimentDep = Annotated[Experiment, Depends(_experiment)]
