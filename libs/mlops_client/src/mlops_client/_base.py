"""The HTTP layer every service client shares: timeouts, safe retries, request ids, typed errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self

import httpx

from mlops_client.config import ClientConfig
from mlops_client.errors import MlopsError, ServiceUnavailableError, error_for

#: Set this (e.g. from an incoming request) and every call carries it as X-Request-ID.
request_id: ContextVar[str | None] = ContextVar("mlops_request_id", default=None)

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUS = frozenset({502, 503, 504})


def backoff(attempt: int) -> None:
    """The pause after failed attempt `attempt` (1-based) of a retried call: 0.1 s doubling, at
    most 2 s. Every retry loop of the client waits through here."""
    time.sleep(min(0.1 * 2 ** (attempt - 1), 2.0))


class ServiceClient:
    """A client for one service. Retries only idempotent calls, with exponential backoff."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        config = ClientConfig()
        self.base_url = base_url.rstrip("/")
        self.retries = config.retries if retries is None else retries
        key = api_key if api_key is not None else config.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        read = timeout if timeout is not None else config.timeout
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(read, connect=config.connect_timeout),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        rid = request_id.get()
        headers.setdefault("X-Request-ID", rid or uuid.uuid4().hex)
        return headers

    def request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request; return the response or raise the typed error it maps to."""
        retry = method in IDEMPOTENT if idempotent is None else idempotent
        kwargs["headers"] = self._headers(kwargs.get("headers"))
        attempts = self.retries if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.ReadTimeout,
                httpx.RemoteProtocolError,
            ) as exc:
                if attempt == attempts or (isinstance(exc, httpx.ReadTimeout) and not retry):
                    raise ServiceUnavailableError(
                        0, "SERVICE_UNREACHABLE", f"{method} {self.base_url}{path}: {exc!r}"
                    ) from exc
            else:
                if response.status_code in RETRY_STATUS and attempt < attempts:
                    response.close()
                else:
                    return self._check(response)
            backoff(attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed response (downloads); errors are raised before the body is read."""
        kwargs["headers"] = self._headers(kwargs.get("headers"))
        attempts = self.retries if method in IDEMPOTENT else 1
        for attempt in range(1, attempts + 1):
            try:
                with self._http.stream(method, path, **kwargs) as response:
                    if response.status_code in RETRY_STATUS and attempt < attempts:
                        pass
                    else:
                        if response.status_code >= 400:
                            response.read()
                            self._check(response)
                        yield response
                        return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt == attempts:
                    raise ServiceUnavailableError(
                        0, "SERVICE_UNREACHABLE", f"{method} {self.base_url}{path}: {exc!r}"
                    ) from exc
            backoff(attempt)

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        raise error_for(response.status_code, body)

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=_clean(params)).json()

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.request("GET", "/health").json()
        return answer

    def ready(self) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = self.request("GET", "/ready", idempotent=False).json()
            return answer
        except MlopsError as exc:
            if exc.status == 503:
                return {"status": "unavailable", **exc.details}
            raise


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, Iterable) and not isinstance(value, str | bytes):
            value = list(value)
            if not value:
                continue
        out[key] = value
    return out
