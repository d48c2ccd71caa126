"""Online store: the newest row per entity of each feature set, served in one round trip.

`app.state.online` is an `OnlineStore` (SQLite file or Redis, from `settings.online_store`), made
at start-up and closed at shutdown. Writers (push, materialization) call
`await app.state.online.write(view, rows)` with `OnlineRow`s.
"""

from __future__ import annotations

from fastapi import FastAPI

from feature_store.online.base import OnlineRow, OnlineStore, Record, RecordKey
from feature_store.settings import FeatureStoreSettings

__all__ = [
    "OnlineRow",
    "OnlineStore",
    "Record",
    "RecordKey",
    "build_online_store",
    "close_online_store",
    "open_online_store",
    "ping_online_store",
]


def build_online_store(settings: FeatureStoreSettings) -> OnlineStore:
    if settings.online_store == "redis":
        from feature_store.online.redis_store import RedisOnlineStore

        return RedisOnlineStore(
            settings.redis_url,
            settings.redis_prefix,
            read_timeout=settings.online_read_timeout_seconds,
            socket_timeout=settings.redis_socket_timeout_seconds,
            connect_timeout=settings.redis_connect_timeout_seconds,
        )
    from feature_store.online.sqlite_store import SqliteOnlineStore

    return SqliteOnlineStore(settings.online_sqlite_path)


async def open_online_store(app: FastAPI) -> None:
    app.state.online = build_online_store(app.state.settings)


async def ping_online_store(app: FastAPI) -> None:
    """`/ready`'s check of the online store (the kit bounds it in time)."""
    await app.state.online.ping()


async def close_online_store(app: FastAPI) -> None:
    online: OnlineStore | None = getattr(app.state, "online", None)
    app.state.online = None
    if online is not None:
        await online.close()
