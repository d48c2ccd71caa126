"""`python -m <service> migrate`, the separate migration step of compose (a one-shot container)
and Kubernetes (an init container): the service's migrations to head on its configured database,
exit 0; a database it cannot reach is exit 1 with one line saying why; anything else on the
command line is exit 2 with the usage. Real processes, real SQLite and PostgreSQL databases."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from mlops_kit.db import normalize_url
from mlops_kit.testing import fresh_postgres_database

# a process's start-up is mostly imports, which take long on a loaded machine
PROCESS_SECONDS = 240
MODULES = ["model_registry", "ab_testing"]


def run(module: str, *args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # only what the test sets: no MLOPS_* of the caller, no .env file
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLOPS_")}
    clean.update(MLOPS_ENV_FILE="", MLOPS_DATA_DIR=str(tmp_path / "data"), MLOPS_LOG_JSON="false", **env)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=clean,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=PROCESS_SECONDS,
    )


def head_revision(module: str) -> str:
    migrations = importlib.import_module(f"{module}.app").MIGRATIONS
    config = Config()
    config.set_main_option("script_location", str(migrations))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def versions(url: str) -> list[str]:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


@contextmanager
def fresh_database(backend: str, tmp_path: Path, module: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    with fresh_postgres_database(f"migrate_{module}") as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("module", MODULES)
def test_migrate_brings_a_fresh_database_to_head_then_finds_nothing_to_do(
    module: str, backend: str, tmp_path: Path
) -> None:
    with fresh_database(backend, tmp_path, module) as url:
        done = run(module, "migrate", tmp_path=tmp_path, MLOPS_DATABASE_URL=url)
        assert done.returncode == 0, done.stderr
        assert versions(url) == [head_revision(module)]
        assert "database migrated to head" in done.stderr

        if backend == "postgresql":  # what a second replica's init container finds: nothing to do
            again = run(module, "migrate", tmp_path=tmp_path, MLOPS_DATABASE_URL=url)
            assert again.returncode == 0, again.stderr
            assert versions(url) == [head_revision(module)]
            assert "Running upgrade" not in again.stderr


def test_migrate_without_a_database_url_migrates_the_embedded_sqlite_file(tmp_path: Path) -> None:
    # no URL: the embedded SQLite file under the data dir, where the service itself looks
    done = run("model_registry", "migrate", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert versions(f"sqlite:///{tmp_path / 'data' / 'model_registry' / 'metadata.db'}") == [
        head_revision("model_registry")
    ]


def test_migrate_fails_with_one_line_on_an_unreachable_database(tmp_path: Path) -> None:
    done = run(
        "model_registry",
        "migrate",
        tmp_path=tmp_path,
        MLOPS_DATABASE_URL="postgresql://postgres@127.0.0.1:1/x",
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("python -m model_registry migrate: failed: ")
    assert "127.0.0.1" in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["migrate", "--now"], ["upgrade"]])
def test_anything_else_on_the_command_line_is_the_usage(args: list[str], tmp_path: Path) -> None:
    done = run("ab_testing", *args, tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "usage: python -m ab_testing [migrate]"
    assert not (tmp_path / "data").exists(), "nothing migrated, nothing served"
