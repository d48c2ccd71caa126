"""The online store's one interface: the newest row per (feature set, entity), nothing older.

Every backend keeps, per feature set and entity key, one record: the row's event time, its
creation time and its values (feature name -> stored value, as `types.coerce` made it). A write
replaces the record only when its (event_ts, created_ts) is at least the stored one, so replays
and late arrivals never roll a value back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import orjson

from feature_store.registry.views import FeatureSetView

# (entity_key, event_ts_us, created_ts_us, {feature: stored value})
OnlineRow = tuple[str, int, int, dict[str, Any]]
# what a read returns per key: (event_ts_us, created_ts_us, {feature: stored value})
Record = tuple[int, int, dict[str, Any]]
# what a read asks for: (feature_set_id, entity_key)
RecordKey = tuple[int, str]


class OnlineStore(ABC):
    """One implementation per backend, chosen by `settings.online_store`."""

    kind: str

    @abstractmethod
    async def write(self, view: FeatureSetView, rows: Sequence[OnlineRow]) -> int:
        """Store the rows of one feature set, newest (event_ts, created_ts) wins per entity;
        returns how many rows were applied (not older than what was stored)."""

    @abstractmethod
    async def read(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        """The record of each key, in order (None where there is none), in one round trip."""

    @abstractmethod
    async def delete_feature_set(self, feature_set_id: int) -> None:
        """Forget every record of a feature set."""

    @abstractmethod
    async def clear(self) -> None:
        """Forget everything this store holds (its file, or its key prefix in Redis)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the backend cannot be reached."""

    @abstractmethod
    async def close(self) -> None: ...


def pack(event_ts: int, created_ts: int, values: dict[str, Any]) -> bytes:
    """One record as bytes: `<event_ts> <created_ts> <values as JSON>` (the timestamps readable
    by a Redis script without decoding the JSON)."""
    return b"%d %d " % (event_ts, created_ts) + orjson.dumps(values)


def unpack(raw: bytes) -> Record:
    event_ts, created_ts, values = raw.split(b" ", 2)
    return int(event_ts), int(created_ts), orjson.loads(values)


def newest_per_entity(rows: Sequence[OnlineRow]) -> list[OnlineRow]:
    """The newest row of each entity in a batch (later wins on equal timestamps)."""
    best: dict[str, OnlineRow] = {}
    for row in rows:
        held = best.get(row[0])
        if held is None or (row[1], row[2]) >= (held[1], held[2]):
            best[row[0]] = row
    return list(best.values())
