from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mlops_kit.db import Database, after_commit, count_rows, normalize_url, on_rollback, run_callbacks
from mlops_kit.testing import fresh_postgres_database
from sqlalchemy import column, select, table, text


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


def test_count_rows_counts_what_a_filtered_ordered_query_returns(db: Database) -> None:
    with db.session(write=True) as session:
        session.execute(text("CREATE TABLE c (x INTEGER)"))
        session.execute(text("INSERT INTO c VALUES (1), (2), (3), (4), (5)"))
        session.commit()
    x = column("x")
    with db.session(write=False) as session:
        query = select(x).select_from(table("c", x))
        assert count_rows(session, query) == 5
        assert count_rows(session, query.where(x > 2).order_by(x.desc())) == 3
        assert count_rows(session, query.where(x > 9)) == 0


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


def test_replicas_starting_together_migrate_one_after_the_other(tmp_path: Path) -> None:
    """Four processes' worth of start-ups at once on one fresh database: every one succeeds and
    the schema is migrated once (without the lock they race on CREATE TABLE / alembic_version)."""
    import threading

    from mlops_kit.db import run_migrations

    migrations = Path(__file__).resolve().parents[3] / "services" / "model_registry" / "migrations"

    def start_together(url: str) -> None:
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def start() -> None:
            barrier.wait()
            try:
                run_migrations(url, migrations)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        database = Database.connect(url)
        try:
            with database.reader.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
        finally:
            database.dispose()

    start_together(f"sqlite:///{tmp_path}/registry.db")
    with fresh_postgres_database("kitmigrate") as url:
        start_together(url)
