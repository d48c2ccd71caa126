"""A minimal Redis client for the serving reads: one connection per event loop, requests
pipelined on it as they come (replies arrive in order), RESP2 replies parsed from one buffer.

redis-py spends ~150 µs of CPU per command on the serving path (pool checkout, per-reply stream
reads); this spends ~40 µs, and concurrent requests share one socket. Only plain TCP connections
are handled here; writes, scans and TLS or Unix-socket connections stay with redis-py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast


class RedisReplyError(Exception):
    """An error reply (`-ERR ...`, `-NOSCRIPT ...`)."""


class _Incomplete(Exception):
    pass


def encode(args: tuple[bytes | str | int, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg if isinstance(arg, bytes) else b"%d" % arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse(buf: bytearray, pos: int) -> tuple[Any, int]:
    """One reply starting at `pos`: (value, position after it); raises _Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        size = int(buf[pos + 1 : end])
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buf) < stop + 2:
            raise _Incomplete
        return bytes(buf[end + 2 : stop]), stop + 2
    if kind == 42:  # * array
        count = int(buf[pos + 1 : end])
        if count < 0:
            return None, end + 2
        items = []
        at = end + 2
        for _ in range(count):
            item, at = parse(buf, at)
            items.append(item)
        return items, at
    if kind == 58:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # + simple string
        return bytes(buf[pos + 1 : end]), end + 2
    if kind == 45:  # - error
        return RedisReplyError(buf[pos + 1 : end].decode(errors="replace")), end + 2
    raise RedisReplyError(f"unexpected reply type {chr(kind)!r}")


class RespConnection(asyncio.Protocol):
    def __init__(self) -> None:
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        pos = 0
        while self._waiters:
            try:
                value, pos = parse(buf, pos)
            except _Incomplete:
                break
            waiter = self._waiters.popleft()
            if waiter.done():  # its request was cancelled: the reply is dropped, order kept
                continue
            if isinstance(value, RedisReplyError):
                waiter.set_exception(value)
            else:
                waiter.set_result(value)
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = ConnectionError(f"connection to Redis lost: {exc}" if exc else "connection to Redis closed")
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def call(self, *args: bytes | str | int) -> asyncio.Future[Any]:
        if self._transport is None:
            raise ConnectionError("connection to Redis closed")
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._transport.write(encode(args))
        return waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class RespReader:
    """Reads over one lazily (re)opened connection to a plain-TCP Redis."""

    def __init__(
        self, host: str, port: int, db: int, username: str | None, password: str | None, timeout: float
    ) -> None:
        self._address = (host, port)
        self._setup: list[tuple[bytes | str | int, ...]] = []
        if password:
            self._setup.append(("AUTH", username, password) if username else ("AUTH", password))
        if db:
            self._setup.append(("SELECT", db))
        self._timeout = timeout
        self._conn: RespConnection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None

    async def call(self, *args: bytes | str | int) -> Any:
        conn = self._conn
        if conn is None or not conn.is_open or self._loop is not asyncio.get_running_loop():
            conn = await self._open()
        try:
            return await conn.call(*args)
        except ConnectionError:  # reads are idempotent: one more try on a fresh connection
            conn = await self._open()
            return await conn.call(*args)

    async def _open(self) -> RespConnection:
        loop = asyncio.get_running_loop()
        if self._opening is None or self._loop is not loop:
            # a connection belongs to the loop that opened it: never touch it from another one
            self._opening, self._loop, self._conn = asyncio.Lock(), loop, None
        async with self._opening:
            if self._conn is not None and self._conn.is_open:
                return self._conn
            self._drop()
            async with asyncio.timeout(self._timeout):
                _, conn = await loop.create_connection(RespConnection, *self._address)
                try:
                    for command in self._setup:
                        await conn.call(*command)
                except BaseException:
                    conn.close()
                    raise
            self._conn = conn
            return conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._drop()
