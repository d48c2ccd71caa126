"""No NUL character reaches storage: PostgreSQL text cannot hold one (SQLite can), so a NUL in the
path, the query or a JSON body is refused with the same 422 on both backends, for every route,
before any handler runs. Strings inside bodies are also typed (`mlops_kit.bounds`), which
documents the rule in OpenAPI; this guard keeps free-form JSON and hand-parsed bodies in it too."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_kit.errors import AppError, Unprocessable, error_response

# `\u0000` preceded by an even number of backslashes (an odd run would escape the `\` itself)
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MESSAGE = "a NUL character (\\u0000) cannot be stored; remove it from the {where}"


def _nul_error(where: str, loc: list[str]) -> Unprocessable:
    errors = [{"loc": loc, "msg": "contains a NUL character", "type": "string_nul"}]
    return Unprocessable(MESSAGE.format(where=where), {"errors": errors})


def json_has_nul(body: bytes) -> bool:
    return b"\x00" in body or (b"u0000" in body and _ESCAPED_NUL.search(body) is not None)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return b"json" in value.lower()
    return False  # no content type: a raw upload (a typed JSON field still refuses NUL itself)


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        for where, bad in (("path", "\x00" in scope["path"]), ("query", b"%00" in query or b"\x00" in query)):
            if bad:
                await _respond(scope, receive, send, _nul_error(where, [where]))
                return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except AppError as exc:  # the body limit, raised while the body streams in
            await _respond(scope, receive, send, exc)
            return
        if body is None:  # the client went away before sending its body: nothing to answer
            return
        if json_has_nul(body):
            await _respond(scope, receive, send, _nul_error("request body", ["body"]))
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole JSON body, read before the app runs (it is bounded by the body limit, and the
    app would read it whole anyway)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _respond(scope: Scope, receive: Receive, send: Send, exc: AppError) -> None:
    request = Request(scope)
    renderer: Any = getattr(request.app.state, "error_renderer", None) if "app" in scope else None
    response = renderer(request, exc.status_code, exc.code, exc.message, exc.details) if renderer else None
    if response is None:
        response = error_response(exc.status_code, exc.code, exc.message, exc.details)
    await response(scope, receive, send)
