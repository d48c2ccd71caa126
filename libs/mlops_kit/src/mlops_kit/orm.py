"""What every service's tables share: constraint names that follow one convention, and the
dialect's INSERT with ON CONFLICT for upserts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.schema import Table

# Names Alembic can find again: unnamed constraints otherwise get whatever each database picks
# (PostgreSQL `runs_pkey`, SQLite nothing), so a later migration cannot drop them by name on both.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def service_metadata() -> MetaData:
    """A service's `Base.metadata`: ``class Base(DeclarativeBase): metadata = service_metadata()``."""
    return MetaData(naming_convention=NAMING_CONVENTION)


def dialect_insert(session: Session, table: Table | Any) -> Any:
    """``INSERT`` of the session's dialect, which has ``on_conflict_do_update`` /
    ``on_conflict_do_nothing`` on SQLite and PostgreSQL alike."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table)
