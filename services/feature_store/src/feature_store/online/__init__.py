"""Online store: the newest row per entity of each feature set, served in one round trip.

The app holds one `OnlineStore` (SQLite file or Redis, from `settings.online_store`), built by
`build_online_store` in its lifespan and closed at shutdown. Writers (push, materialization) call
`await online.write(view, rows)` with `OnlineRow`s.
"""

from __future__ import annotations

from feature_store.online.base import OnlineRow, OnlineStore, Record, RecordKey
from feature_store.settings import FeatureStoreSettings

__all__ = [
    "OnlineRow",
    "OnlineStore",
    "Record",
    "RecordKey",
    "build_online_store",
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
