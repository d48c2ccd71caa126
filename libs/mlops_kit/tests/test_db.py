from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlops_kit.db import Database, after_commit, normalize_url, on_rollback, run_callbacks
from mlops_kit.testing import fresh_postgres_database
from sqlalchemy import text


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        database = Database.connect(f"sqlite:///{tmp_path}/nested/dir/meta.db")
        yield database
        database.dispose()
        return
    with fresh_postgres_database("kit") as url:
        database = Database.connect(url)
        yield database
        database.dispose()


def test_write_session_commits_and_read_session_sees_it(db: Database) -> None:
    db.ping()
    with db.session(write=True) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.commit()
    with db.session(write=False) as session:
        assert session.execute(text("SELECT x FROM t")).scalar() == 1


def test_rollback_callbacks_run_only_on_failure(db: Database) -> None:
    ran: list[str] = []
    with db.session(write=True) as session:
        on_rollback(session, lambda: ran.append("undo"))
        after_commit(session, lambda: ran.append("done"))
        session.rollback()
        run_callbacks(session, "on_rollback")
    assert ran == ["undo"]


def test_postgres_urls_are_normalised_to_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
