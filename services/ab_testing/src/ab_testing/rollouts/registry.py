"""The model registry as rollouts use it: read and move one alias of one model.

A thin wrapper over ``mlops_client.RegistryClient`` (URL from ``MLOPS_MODEL_REGISTRY_URL``, key from
``MLOPS_API_KEY``, read when a client is made so a running service follows its environment).
Every failure comes back as a :class:`RegistryError` — ``unreachable`` (connection refused, a 5xx,
a timeout: worth retrying) or ``rejected`` (the registry answered 4xx: unknown model or version, a
missing key) — so a caller records it instead of failing: the controller keeps the operation pending
and retries it on its next tick, the promote endpoint answers 503 / 422.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlops_client import MlopsError, NotFoundError, RegistryClient, ServerError, ServiceUnavailableError

#: seconds one registry call may take (the client retries idempotent calls on connection errors)
TIMEOUT = 10.0


class RegistryError(Exception):
    def __init__(self, kind: str, message: str, *, status: int = 0, code: str = ""):
        super().__init__(message)
        self.kind = kind  # unreachable | rejected
        self.message = message
        self.status = status
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.kind == "unreachable"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "code": self.code, "message": self.message[:500]}


def _wrap(exc: Exception) -> RegistryError:
    if isinstance(exc, MlopsError):
        kind = "unreachable" if isinstance(exc, ServiceUnavailableError | ServerError) else "rejected"
        return RegistryError(kind, exc.message or str(exc), status=exc.status, code=exc.code)
    return RegistryError("unreachable", f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class AliasMove:
    """What moving an alias did: ``previous`` is None when the alias did not exist."""

    model: str
    alias: str
    previous: str | None
    version: str
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "from": self.previous,
            "to": self.version,
            "changed": self.changed,
        }


class Registry:
    """Alias reads and moves; ``client_factory`` builds a fresh client per operation (tests may
    pass their own)."""

    def __init__(self, client_factory: Callable[[], RegistryClient] | None = None):
        self._factory = client_factory or (lambda: RegistryClient(timeout=TIMEOUT, retries=2))

    def get_alias(self, model: str, alias: str) -> str | None:
        """The version ``model@alias`` points at, None when the alias (or the model) does not exist."""
        try:
            with self._factory() as client:
                return client.get_alias(model, alias).version
        except NotFoundError:
            return None
        except Exception as exc:
            raise _wrap(exc) from exc

    def move_alias(self, model: str, alias: str, version: str, *, comment: str) -> AliasMove:
        """Point ``model@alias`` at ``version`` (nothing is written when it already does)."""
        try:
            with self._factory() as client:
                try:
                    previous: str | None = client.get_alias(model, alias).version
                except NotFoundError:
                    previous = None
                if previous == version:
                    return AliasMove(model, alias, previous, version, changed=False)
                client.set_alias(model, alias, version, comment=comment[:500])
                return AliasMove(model, alias, previous, version, changed=True)
        except Exception as exc:
            raise _wrap(exc) from exc
