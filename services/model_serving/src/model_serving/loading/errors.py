"""The two ways loading and predicting fail: the artifact is unusable, or the request does not fit."""

from __future__ import annotations

from typing import Any


class ModelLoadError(Exception):
    """The artifact cannot be served: unknown format, corrupt file, missing MLmodel data, bad flavor."""

    @classmethod
    def unreadable(cls, file_name: str, what: str, exc: Exception) -> ModelLoadError:
        return cls(f"{file_name} is not a readable {what} ({type(exc).__name__}: {exc})")


class InputMismatch(Exception):
    """The request's rows do not fit the model's signature (a 422 at the HTTP layer).

    `expected` is {"names": [...] | None, "n_features": int | None, "types": {...} | None};
    `found` says what was wrong where it helps a client (missing/unknown columns, row and column).
    """

    def __init__(
        self, message: str, expected: dict[str, Any], *, found: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expected = expected
        self.found = found or {}
