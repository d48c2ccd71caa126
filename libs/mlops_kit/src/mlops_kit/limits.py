"""Request body limits: JSON and form bodies are bounded; streamed uploads have their own limit."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlops_kit.errors import PayloadTooLarge, error_response

UPLOAD_TYPES = (b"application/octet-stream", b"multipart/form-data")


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
        response = error_response(413, "PAYLOAD_TOO_LARGE", self._message(), {"max_bytes": self.max_bytes})
        await response(scope, receive, send)
