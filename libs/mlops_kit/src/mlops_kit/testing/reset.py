"""Emptying a service's tables between tests that share one app (one app per session is what
keeps the suites fast)."""

from __future__ import annotations

from sqlalchemy import MetaData, text

from mlops_kit.db import Database


def empty_tables(
    db: Database, metadata: MetaData, *, truncate: bool = True, restart_identity: bool = False
) -> None:
    """Delete every row of `metadata`'s tables, children first. On PostgreSQL one ``TRUNCATE``
    (optionally restarting the id sequences) unless `truncate` is off: a service whose background
    threads keep transactions open would wait on TRUNCATE's exclusive lock, and DELETE does not."""
    tables = metadata.sorted_tables
    with db.writer.begin() as conn:
        if db.is_sqlite or not truncate:
            for table in reversed(tables):
                conn.execute(table.delete())
            return
        restart = " RESTART IDENTITY" if restart_identity else ""
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)}{restart} CASCADE"))
