"""Audit log: every mutation (who, what, when), written in the request's own transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Column, DateTime, Insert, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session


def utcnow() -> datetime:
    return datetime.now(UTC)


def audit_table(metadata: MetaData) -> Table:
    return Table(
        "audit_log",
        metadata,
        Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False, default=utcnow, index=True),
        Column("actor", String(128), nullable=False),
        Column("role", String(16), nullable=False),
        Column("method", String(8), nullable=False),
        Column("path", String(1024), nullable=False),
        Column("route", String(512), nullable=True),
        Column("status", Integer, nullable=False),
        Column("request_id", String(64), nullable=True),
        Column("details", JSON, nullable=True),
    )


_INSERTS: dict[Table, Insert] = {}


def write_audit(session: Session, table: Table, **values: object) -> None:
    """One row per mutation; the statement is built once per table and run on the session's
    connection (it is on every write request's path)."""
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = insert(table)
    session.connection().execute(stmt, {"at": utcnow(), **values})
