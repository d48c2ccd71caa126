"""Experiments: router → service → repository, with the schemas they share.

What other modules use from here is re-exported: loading an experiment, its routing definition,
phases and decisions."""

from ab_testing.experiments.service import (
    control_name,
    definition,
    get_experiment,
    new_phase,
    record_decision,
    transition,
)

__all__ = ["control_name", "definition", "get_experiment", "new_phase", "record_decision", "transition"]
