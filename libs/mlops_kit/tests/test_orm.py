from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlops_kit.db import Database, run_migrations
from mlops_kit.orm import dialect_insert, service_metadata
from mlops_kit.testing import fresh_postgres_database
from sqlalchemy import Column, ForeignKey, Integer, String, Table, UniqueConstraint, select, text

SERVICES = Path(__file__).resolve().parents[3] / "services"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/orm.db"
        return
    with fresh_postgres_database("kitorm") as pg:
        yield pg


def _tables() -> tuple[Table, Table]:
    metadata = service_metadata()
    parent = Table("parent", metadata, Column("id", Integer, primary_key=True), Column("name", String(8)))
    child = Table(
        "child",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("parent_id", ForeignKey("parent.id")),
        Column("key", String(8), index=True),
        Column("value", Integer),
        UniqueConstraint("parent_id", "key"),
    )
    return parent, child


def test_constraints_are_named_by_the_convention_not_by_each_database() -> None:
    parent, child = _tables()
    names = {c.name for c in child.constraints} | {i.name for i in child.indexes}
    assert names == {"pk_child", "fk_child_parent_id_parent", "uq_child_parent_id_key", "ix_child_key"}
    assert parent.primary_key.name == "pk_parent"


def test_dialect_insert_upserts_on_both_backends(url: str) -> None:
    parent, child = _tables()
    db = Database.connect(url)
    try:
        parent.metadata.create_all(db.writer)
        with db.session(write=True) as session, session.begin():
            session.execute(parent.insert().values(id=1, name="p"))
            for value in (1, 2):
                stmt = dialect_insert(session, child).values(id=1, parent_id=1, key="k", value=value)
                session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"value": value}))
            skipped = dialect_insert(session, child).values(id=1, parent_id=1, key="k", value=9)
            session.execute(skipped.on_conflict_do_nothing(index_elements=["id"]))
        with db.session(write=False) as session:
            assert session.execute(select(child.c.value)).scalars().all() == [2]
    finally:
        db.dispose()


@pytest.mark.parametrize("service", ["model_registry", "pipeline_orchestrator"])
def test_the_kit_alembic_env_migrates_a_service_to_head(service: str, url: str) -> None:
    run_migrations(url, SERVICES / service / "migrations")
    db = Database.connect(url)
    try:
        with db.reader.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    finally:
        db.dispose()
