"""The one error hierarchy and its JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

log = logging.getLogger("mlops.errors")
RETRY_AFTER_SECONDS = "1"  # what a 503 (a backend down or stalled) tells clients to wait


class JsonResponse(Response):
    """JSON rendered by orjson (for the few responses built by hand: errors, readiness)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=str)


class AppError(Exception):
    status_code = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(AppError):
    status_code = 400
    code = "BAD_REQUEST"


class InvalidJson(BadRequest):
    code = "INVALID_JSON"


class Unauthorized(AppError):
    status_code = 401
    code = "UNAUTHORIZED"


class Forbidden(AppError):
    status_code = 403
    code = "FORBIDDEN"


class NotFound(AppError):
    status_code = 404
    code = "NOT_FOUND"


class Conflict(AppError):
    status_code = 409
    code = "CONFLICT"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "PAYLOAD_TOO_LARGE"


class RangeNotSatisfiable(AppError):
    status_code = 416
    code = "RANGE_NOT_SATISFIABLE"


class Unprocessable(AppError):
    status_code = 422
    code = "VALIDATION_ERROR"


class ServiceUnavailable(AppError):
    status_code = 503
    code = "SERVICE_UNAVAILABLE"


class ErrorDetail(BaseModel):
    code: str = Field(examples=["MODEL_VERSION_EXISTS"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """The one error shape of every 4xx/5xx."""

    error: ErrorDetail


# what any route can answer besides its success: documented on every route by the app factory
COMMON_ERRORS: dict[int, str] = {
    400: "Bad request: malformed JSON or an invalid value (a request line or headers the HTTP "
    "server cannot take, e.g. a URL over 64 KiB, is refused before the service, as text/plain)",
    401: "Missing or unknown API key",
    403: "The key's role may not do this",
    404: "Not found",
    409: "Conflicts with existing data",
    413: "Request body too large",
    422: "Validation error",
    503: "A backend is unavailable; retry later",
    504: "The request took longer than the service's request timeout",
}


def error_responses(model: type[BaseModel] = ErrorBody) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a router: every common error status with `model` as its body."""
    responses: dict[int | str, dict[str, Any]] = {
        status: {"model": model, "description": text} for status, text in COMMON_ERRORS.items()
    }
    responses[400]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return responses


def json_error_responses() -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route whose success is not JSON (an HTML page, a file): its errors are
    still the JSON error shape, which `model` alone would document under the route's media type."""
    schema = {"$ref": "#/components/schemas/ErrorBody"}
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": text, "content": {"application/json": {"schema": schema}}}
        for status, text in COMMON_ERRORS.items()
    }
    responses[400]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return responses


def error_response(status: int, code: str, message: str, details: Any = None) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JsonResponse(body, status_code=status)


# A service that also speaks another API (the MLflow REST API) renders errors in that API's shape
# for the paths under its prefix: (request, status, code, message, details) -> response or None.
ErrorRenderer = Callable[[Request, int, str, str, dict[str, Any]], Response | None]


def _render(request: Request, status: int, code: str, message: str, details: Any = None) -> Response:
    renderer: ErrorRenderer | None = getattr(request.app.state, "error_renderer", None)
    if renderer is not None:
        custom = renderer(request, status, code, message, details or {})
        if custom is not None:
            return custom
    return error_response(status, code, message, details)


def render_error(scope: Scope, status: int, code: str, message: str, details: Any = None) -> Response:
    """An error answered by a pure ASGI middleware (413, 504), in the shape the path's API speaks."""
    if "app" not in scope:
        return error_response(status, code, message, details)
    return _render(Request(scope), status, code, message, details)


def invalid_json(doc: str | bytes, position: int, reason: str, what: str = "request body") -> InvalidJson:
    """The one answer to malformed JSON: 400 INVALID_JSON with line, column and position."""
    text = doc.decode("utf-8", "replace") if isinstance(doc, bytes) else doc
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return InvalidJson(
        f"{what} is not valid JSON: {reason} at line {line} column {column}",
        {"line": line, "column": column, "position": position, "reason": reason},
    )


def parse_json(raw: bytes | str, what: str = "request body") -> Any:
    """orjson.loads for a body a handler reads itself; malformed JSON raises `InvalidJson`."""
    try:
        return orjson.loads(raw)
    except json.JSONDecodeError as exc:
        if isinstance(raw, bytes):
            try:
                raw.decode()
            except UnicodeDecodeError as bad:
                raise invalid_json(raw, bad.start, "the body is not valid UTF-8", what) from None
        raise invalid_json(exc.doc or raw, exc.pos, exc.msg, what) from None


def _json_invalid(exc: RequestValidationError) -> InvalidJson | None:
    """FastAPI reports a body it could not decode as a `json_invalid` validation error."""
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            loc = list(err.get("loc", ()))
            position = loc[-1] if loc and isinstance(loc[-1], int) else 0
            reason = str((err.get("ctx") or {}).get("error") or "JSON decode error")
            doc = exc.body if isinstance(exc.body, str | bytes) else ""
            return invalid_json(doc, position, reason)
    return None


def _echo(value: Any) -> Any:
    """The offending input as the error shows it: an integer past 64 bits (which JSON encoders
    refuse) as text, a long string cut."""
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)[:100]
    return value[:200] if isinstance(value, str) else value


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        item = {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        if "input" in err and isinstance(err["input"], str | int | float | bool | None):
            item["input"] = _echo(err["input"])
        cleaned.append(item)
    return cleaned


def _body_error(exc: StarletteHTTPException) -> AppError | None:
    """What FastAPI's 400 "error parsing the body" was really about: a body over the kit's limit
    (raised while it streamed in) or one that is not UTF-8."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, AppError):
        return cause
    if isinstance(cause, UnicodeDecodeError):
        return invalid_json(cause.object, cause.start, "the body is not valid UTF-8")
    return None


# Starlette's and FastAPI's own HTTP errors (routing, body parsing) in the platform's codes
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
}


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _documented_operations(request: Request) -> dict[str, Any] | None:
    """The OpenAPI path item of the route that refused the method. The route knows its template
    without the prefixes of the routers it was included through, so match on the tail."""
    template = getattr(request.scope.get("route"), "path_format", None)
    if not template:
        return None
    for path, item in request.app.openapi()["paths"].items():
        if path.endswith(template) and request.url.path.startswith(path.removesuffix(template)):
            return item  # type: ignore[no-any-return]
    return None


def _allowed_methods(request: Request) -> list[str]:
    """The methods served at this path template: its OpenAPI operations (so `/items/search` does
    not advertise `/items/{id}`'s), else every route matching the path. Starlette's own 405 names
    only the first matching route's methods."""
    documented = _documented_operations(request)
    if documented:
        return sorted(method.upper() for method in documented if method.upper() in _METHODS)
    return [
        method
        for method in _METHODS
        if any(
            r.matches({**request.scope, "method": method})[0] == Match.FULL for r in request.app.router.routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        response = _render(request, exc.status_code, exc.code, exc.message, exc.details)
        if exc.status_code == 503:
            response.headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        bad_json = _json_invalid(exc)
        if bad_json is not None:
            return _render(request, bad_json.status_code, bad_json.code, bad_json.message, bad_json.details)
        errors = _clean_validation_errors(list(exc.errors()))
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", []))
        message = f"invalid request: {where}: {first.get('msg')}" if errors else "invalid request"
        return _render(request, 422, "VALIDATION_ERROR", message, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        cause = _body_error(exc)
        if cause is not None:
            return _render(request, cause.status_code, cause.code, cause.message, cause.details)
        code = HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
        headers = dict(exc.headers or {})
        details: dict[str, Any] = {}
        if exc.status_code == 405:
            allowed = _allowed_methods(request) or headers.get("Allow", "").split(", ")
            headers["Allow"] = ", ".join(allowed)
            details["allowed_methods"] = allowed
        response = _render(request, exc.status_code, code, str(exc.detail), details)
        response.headers.update(headers)
        return response

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return _render(request, 409, "CONFLICT", "the write conflicts with existing data; retry")

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> Response:
        # a value the database refuses as data (out of range, malformed, too long): the request's
        # fault, so not "retryable" (clients would retry it forever); the bounds should catch it first
        log.warning("value refused by the database on %s %s: %s", request.method, request.url.path, exc.orig)
        message = "a value in the request cannot be stored; nothing was written"
        return _render(request, 422, "UNSTORABLE_VALUE", message, {"reason": str(exc.orig)[:300]})

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
        if type(exc.orig).__name__ == "QueryCanceled":  # PostgreSQL's statement_timeout
            code, message = "DATABASE_TIMEOUT", "the database did not finish the request in time"
        else:
            code, message = "DATABASE_UNAVAILABLE", "the database rejected or failed the request"
        response = _render(request, 503, code, f"{message}; nothing was written", {"retryable": True})
        response.headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(request: Request, exc: PoolTimeout) -> Response:
        log.error("no free database connection for %s %s: %s", request.method, request.url.path, exc)
        message = "every database connection is busy; nothing was written"
        response = _render(request, 503, "DATABASE_UNAVAILABLE", message, {"retryable": True})
        response.headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(request, 500, "INTERNAL_ERROR", "internal error; see the service log")
