"""Typed exceptions, mapped from the platform's error shape `{"error": {code, message, details}}`."""

from __future__ import annotations

from typing import Any


class MlopsError(Exception):
    """Any error answered by a platform service (or the failure to reach one)."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class ValidationError(MlopsError):
    """400 / 422: the request was malformed or broke a rule."""


class AuthError(MlopsError):
    """401 / 403: missing or unknown API key, or a role that may not do this."""


class NotFoundError(MlopsError):
    """404."""


class ConflictError(MlopsError):
    """409: e.g. MODEL_VERSION_EXISTS, ARTIFACT_EXISTS."""


class PayloadTooLargeError(MlopsError):
    """413: an upload or body over the service's limit."""


class ServerError(MlopsError):
    """5xx answered by the service."""


class ServiceUnavailableError(MlopsError):
    """The service could not be reached (after the retries allowed for the call)."""


class ChecksumError(MlopsError):
    """Downloaded bytes do not match the checksum the service announced."""


_BY_STATUS: dict[int, type[MlopsError]] = {
    400: ValidationError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
}


def error_for(status: int, body: Any) -> MlopsError:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code, message, details = (
            error.get("code", f"HTTP_{status}"),
            error.get("message", ""),
            error.get("details"),
        )
    else:
        code, message, details = f"HTTP_{status}", str(body)[:500], None
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else MlopsError)
    return cls(status, str(code), str(message), details if isinstance(details, dict) else None)
