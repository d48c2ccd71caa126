"""Serializing read-modify-writes across threads and replicas.

The kit's ``lock_key`` (a PostgreSQL advisory lock on (scope, key); SQLite's write lock from the
transaction's ``BEGIN IMMEDIATE``), taken before the reads the write depends on.

Who takes which lock:

- ``pipeline:<name>``: creating a pipeline or its next version (two at once must not both
  become version N+1, nor both create version 1).
- ``engine``: everything that moves run, task and attempt state: a scheduling pass (so two
  orchestrators never start the same task, fire a schedule tick twice, or both start a queued
  run past ``max_active_runs``), recording a worker's report, cancelling and retrying a run,
  changing a schedule.
- ``alert-runs``: an AlertManager post's cool-down checks and the runs they allow.
"""

from __future__ import annotations

from mlops_kit.db import lock_key
from sqlalchemy.orm import Session

ENGINE = "engine"

__all__ = ["ENGINE", "lock_engine", "lock_key"]


def lock_engine(session: Session) -> None:
    """The lock every change of run, task or attempt state takes (see the module docstring)."""
    lock_key(session, ENGINE)
