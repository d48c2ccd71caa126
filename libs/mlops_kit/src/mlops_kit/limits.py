"""Request body limits: JSON and form bodies are bounded; streamed uploads have their own limit."""

from __future__ import annotations

import asyncio
import math

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_kit.errors import PayloadTooLarge, render_error

UPLOAD_TYPES = (b"application/octet-stream", b"multipart/form-data")


def upload_limit(request: Request) -> int:
    """The service's upload limit; an upload that declares a larger Content-Length is refused
    (413) before a byte is read."""
    limit: int = request.app.state.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"upload of {declared} bytes exceeds the limit of {limit} bytes", {"max_bytes": limit}
        )
    return limit


class BodyLimitMiddleware:
    """Refuse non-upload bodies over `max_bytes` (by Content-Length, or while they stream in)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        if headers.get(b"content-type", b"").startswith(UPLOAD_TYPES):
            await self.app(scope, receive, send)
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise PayloadTooLarge(self._message(), {"max_bytes": self.max_bytes})
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return (
            f"request body exceeds {self.max_bytes} bytes; upload artifacts as "
            "application/octet-stream or multipart/form-data"
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = render_error(
            scope, 413, "PAYLOAD_TOO_LARGE", self._message(), {"max_bytes": self.max_bytes}
        )
        await response(scope, receive, send)


class RequestTimeoutMiddleware:
    """504 when a handler takes longer than `seconds` to start its response.

    The clock starts when the request body has fully arrived (a slow upload is not the handler's
    fault) and stops at the first response byte (a long streamed download is not cut off).
    """

    def __init__(self, app: ASGIApp, seconds: float):
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        started = False
        with anyio.CancelScope() as deadline:
            deadline.deadline = anyio.current_time() + self.seconds

            async def timed_receive() -> Message:
                message = await receive()
                if message["type"] == "http.request":
                    deadline.deadline = anyio.current_time() + self.seconds
                return message

            async def timed_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    deadline.deadline = math.inf
                await send(message)

            await self.app(scope, timed_receive, timed_send)
        if deadline.cancelled_caught and not started:
            response = render_error(
                scope,
                504,
                "REQUEST_TIMEOUT",
                f"the request took longer than {self.seconds:g} s; it may or may not "
                "have taken effect, so check before retrying a write",
                {"timeout_seconds": self.seconds},
            )
            await response(scope, receive, send)


class SqliteWriteGate:
    """Lets at most ``limit`` write requests into the thread pool at once (embedded SQLite).

    A write request's transaction spans two thread-pool hops (the endpoint, then the commit in
    the session dependency's exit). SQLite has one writer: when every pool thread holds a request
    waiting for the write lock, the holder finds no thread to commit on, and all of them wait out
    the busy timeout. Queuing writes here, on the event loop, keeps threads free. Pure ASGI."""

    READS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, app: ASGIApp, limit: int = 8):
        self.app = app
        self.limit = limit
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in self.READS:
            await self.app(scope, receive, send)
            return
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limit)
        async with self._gate:
            await self.app(scope, receive, send)
