"""The production online store: Redis, one string per (feature set, entity).

Key `<prefix>:<feature_set_id>:<entity_key>`, value `<event_ts> <created_ts> <values JSON>`
(`base.pack`): any number of features of an entity come back with one GET, and a request's
entities of every feature set with one MGET (one round trip). Writes go through a Lua script that
compares timestamps and sets atomically, many rows per call, all calls of a batch pipelined.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from feature_store.online.base import (
    OnlineRow,
    OnlineStore,
    Record,
    RecordKey,
    newest_per_entity,
    pack,
    unpack,
)
from feature_store.online.resp import RedisReplyError, RespReader
from feature_store.registry.views import FeatureSetView

# KEYS: record keys; ARGV: (event_ts, created_ts, packed value) per key. Sets a key only when the
# stored record is not newer; returns how many were set.
_NEWEST_WINS = """
local applied = 0
for i, key in ipairs(KEYS) do
    local base = (i - 1) * 3
    local ev = tonumber(ARGV[base + 1])
    local cr = tonumber(ARGV[base + 2])
    local held = redis.call('GET', key)
    local newer = true
    if held then
        local hev, hcr = string.match(held, '^(%-?%d+) (%-?%d+) ')
        hev = tonumber(hev)
        hcr = tonumber(hcr)
        newer = ev > hev or (ev == hev and cr >= hcr)
    end
    if newer then
        redis.call('SET', key, ARGV[base + 3])
        applied = applied + 1
    end
end
return applied
"""
# ARGV[1]: record keys separated by U+001E. Answers the records in order, separated by U+001E (an
# empty one where there is none): one bulk string to parse instead of one per key. JSON escapes
# control characters, so U+001E never occurs inside a record. Keys are built by the caller, so this
# needs one Redis (not Redis Cluster), which is what the online store is deployed on.
_READ_MANY = """
local sep = string.char(30)
local keys = {}
for key in string.gmatch(ARGV[1], '[^' .. sep .. ']+') do
    keys[#keys + 1] = key
end
local out = {}
for first = 1, #keys, 500 do
    local values = redis.call('MGET', unpack(keys, first, math.min(first + 499, #keys)))
    for i = 1, #values do
        out[#out + 1] = values[i] or ''
    end
end
return table.concat(out, sep)
"""
SEPARATOR = "\x1e"
PLAIN_MGET_KEYS = 4  # up to this many keys a plain MGET is quicker than the script
ROWS_PER_SCRIPT_CALL = 200
_SCAN_BATCH = 1000


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisOnlineStore(OnlineStore):
    kind = "redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        read_timeout: float = 1.0,
        socket_timeout: float = 5.0,
        connect_timeout: float = 1.0,
    ) -> None:
        self.prefix = prefix
        self.read_timeout = read_timeout
        # every call is bounded: a frozen Redis costs a request seconds, never minutes. One retry
        # on a dropped connection (a restarted Redis), none on a timeout (it would double the wait).
        self.client = aioredis.Redis.from_url(
            url,
            decode_responses=False,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._shas: dict[str, str] = {}
        self._reader = _fast_reader(self.client)

    def key(self, feature_set_id: int, entity_key: str) -> str:
        return f"{self.prefix}:{feature_set_id}:{entity_key}"

    async def write(self, view: FeatureSetView, rows: Sequence[OnlineRow]) -> int:
        if not rows:
            return 0
        calls: list[tuple[list[str], list[bytes | int]]] = []
        rows = newest_per_entity(rows)
        for start in range(0, len(rows), ROWS_PER_SCRIPT_CALL):
            keys: list[str] = []
            args: list[bytes | int] = []
            for entity_key, event_ts, created_ts, values in rows[start : start + ROWS_PER_SCRIPT_CALL]:
                keys.append(self.key(view.id, entity_key))
                args += (event_ts, created_ts, pack(event_ts, created_ts, values))
            calls.append((keys, args))
        try:
            return await self._write_calls(calls)
        except NoScriptError:  # Redis restarted or its scripts were flushed: load and retry once
            self._shas.clear()
            return await self._write_calls(calls)

    async def _sha(self, script: str) -> str:
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = await self.client.script_load(script)
        return sha

    async def _write_calls(self, calls: list[tuple[list[str], list[bytes | int]]]) -> int:
        sha = await self._sha(_NEWEST_WINS)
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            applied = await pipe.execute()
        return int(sum(applied))

    async def read(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        """Raises TimeoutError when Redis does not answer within `read_timeout` seconds."""
        try:
            async with asyncio.timeout(self.read_timeout):
                return await self._read(keys)
        except TimeoutError:
            # the serving connection's replies are late: later reads must not queue behind them
            if self._reader is not None:
                self._reader.close()
            raise TimeoutError(f"Redis did not answer within {self.read_timeout:g} s") from None

    async def _read(self, keys: Sequence[RecordKey]) -> list[Record | None]:
        prefix = self.prefix
        names = [f"{prefix}:{set_id}:{key}" for set_id, key in keys]
        if len(names) > PLAIN_MGET_KEYS:
            joined = SEPARATOR.join(names)
            if joined.count(SEPARATOR) == len(names) - 1:  # no key holds the separator itself
                parts = (await self._read_many(joined)).split(b"\x1e")
                return [unpack(part) if part else None for part in parts]
        if not names:
            return []
        raw: list[Any] = await self._command("MGET", *names)
        return [None if value is None else unpack(value) for value in raw]

    async def _read_many(self, joined: str) -> bytes:
        try:
            return bytes(await self._command("EVALSHA", await self._sha(_READ_MANY), 0, joined))
        except (NoScriptError, RedisReplyError) as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            self._shas.clear()
            return bytes(await self._command("EVALSHA", await self._sha(_READ_MANY), 0, joined))

    async def _command(self, *args: str | int) -> Any:
        if self._reader is not None:
            return await self._reader.call(*args)
        return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]

    async def delete_feature_set(self, feature_set_id: int) -> None:
        await self._delete_matching(f"{_glob_escape(self.prefix)}:{feature_set_id}:*")

    async def clear(self) -> None:
        await self._delete_matching(f"{_glob_escape(self.prefix)}:*")

    async def _delete_matching(self, pattern: str) -> None:
        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                await self.client.unlink(*batch)
                batch = []
        if batch:
            await self.client.unlink(*batch)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        await self.client.aclose()


def _fast_reader(client: aioredis.Redis) -> RespReader | None:
    """The serving reads' own connection, for a plain TCP Redis (else redis-py does them)."""
    pool = client.connection_pool
    if pool.connection_class is not aioredis.Connection:
        return None
    kw = pool.connection_kwargs
    return RespReader(
        kw.get("host", "localhost"),
        int(kw.get("port", 6379)),
        int(kw.get("db", 0)),
        kw.get("username"),
        kw.get("password"),
        float(kw.get("socket_connect_timeout") or 5.0),
    )
