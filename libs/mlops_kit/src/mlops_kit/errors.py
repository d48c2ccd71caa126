"""The one error hierarchy and its JSON shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("mlops.errors")


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
    400: "Bad request: malformed JSON or an invalid value",
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
    return {status: {"model": model, "description": text} for status, text in COMMON_ERRORS.items()}


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


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cleaned = []
    for err in errors:
        item = {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        if "input" in err and isinstance(err["input"], str | int | float | bool | None):
            item["input"] = err["input"]
        cleaned.append(item)
    return cleaned


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
        return _render(request, exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = _clean_validation_errors(list(exc.errors()))
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", []))
        message = f"invalid request: {where}: {first.get('msg')}" if errors else "invalid request"
        return _render(request, 422, "VALIDATION_ERROR", message, {"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 401: "UNAUTHORIZED", 403: "FORBIDDEN"}
        code = codes.get(exc.status_code, f"HTTP_{exc.status_code}")
        response = _render(request, exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> Response:
        log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
        return _render(request, 409, "CONFLICT", "the write conflicts with existing data; retry")

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> Response:
        log.error("database error on %s %s: %s", request.method, request.url.path, exc.orig)
        return _render(
            request,
            503,
            "DATABASE_UNAVAILABLE",
            "the database rejected or failed the request; nothing was written",
            {"retryable": True},
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(request, 500, "INTERNAL_ERROR", "internal error; see the service log")
