"""Serializing read-modify-writes across threads and replicas.

PostgreSQL: a transaction-level advisory lock on a stable 64-bit hash of (scope, key), taken
before the reads the write depends on, so they see every earlier holder's commit. SQLite: a write
transaction holds the database's write lock from its ``BEGIN IMMEDIATE``, which is made to
happen at that point.

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

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session

ENGINE = "engine"


def lock_key(session: Session, scope: str, key: str | int = "") -> None:
    """Hold an exclusive lock on (scope, key) until this transaction ends."""
    if session.get_bind().dialect.name != "postgresql":
        session.connection()  # begins the transaction now: a write session's BEGIN IMMEDIATE
        return
    digest = hashlib.blake2b(f"{scope}\0{key}".encode(), digest_size=8).digest()
    key64 = int.from_bytes(digest, "big", signed=True)
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key64})


def lock_engine(session: Session) -> None:
    """The lock every change of run, task or attempt state takes (see the module docstring)."""
    lock_key(session, ENGINE)
