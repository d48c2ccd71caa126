"""RED metrics per route template, JSON logs, and the request id carried across services."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# nginx's "client closed request": the client went away before it got an answer; not a server error
CLIENT_CLOSED = 499

# 0.2: the latency objective's threshold (p95 < 200 ms), so the SLO's burn rate is read from a bucket
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """A registry per app, so several apps can live in one process (tests, embedded runs)."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mlops_http_requests_total",
            "HTTP requests by route template and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "mlops_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "mlops_http_requests_in_flight",
            "Requests being served",
            ["service"],
            registry=self.registry,
        )
        self.up = Gauge("mlops_service_up", "1 while the service runs", ["service"], registry=self.registry)
        self.up.labels(service).set(1)
        # process_cpu_seconds_total, process_resident_memory_bytes, ... (read from /proc at scrape)
        ProcessCollector(registry=self.registry)

    def counter(self, name: str, doc: str, labels: list[str]) -> Counter:
        return Counter(name, doc, ["service", *labels], registry=self.registry)

    def histogram(
        self, name: str, doc: str, labels: list[str], buckets: tuple[float, ...] = LATENCY_BUCKETS
    ) -> Histogram:
        return Histogram(name, doc, ["service", *labels], buckets=buckets, registry=self.registry)

    def gauge(self, name: str, doc: str, labels: list[str]) -> Gauge:
        return Gauge(name, doc, ["service", *labels], registry=self.registry)


class CachedCollector(Collector):
    """A collector whose series are read from the service's database at scrape time: at most once
    every `cache_seconds` (replicas then report the same values whichever wrote them); a failed
    read serves the previous series. Subclasses implement `read`."""

    def __init__(self, cache_seconds: float = 5.0) -> None:
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: list[Metric] = []
        self._at = float("-inf")

    def read(self) -> list[Metric]:
        raise NotImplementedError

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if time.monotonic() - self._at >= self.cache_seconds:
                try:
                    self._cached = self.read()
                except Exception:
                    logging.getLogger("mlops.metrics").warning(
                        "%s failed; serving the previous series", type(self).__name__, exc_info=True
                    )
                self._at = time.monotonic()
            cached = self._cached
        yield from cached


class ObservabilityMiddleware:
    """Pure ASGI: sets the request id, times the request, labels it by route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics
        self.log = logging.getLogger("mlops.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _header(scope, b"x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        # the client hung up before it got an answer: whatever the handler made of it (an error
        # reading the body, a 400 nobody reads) is recorded as 499, not as a server error
        started = gone = False
        start = time.perf_counter()
        in_flight = self.metrics.in_flight.labels(self.metrics.service)
        in_flight.inc()

        async def receive_wrapper() -> Message:
            nonlocal gone
            message = await receive()
            if message["type"] == "http.disconnect" and not started:
                gone = True
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive_wrapper, send_wrapper)
        except Exception as exc:
            if not (gone or isinstance(exc, ClientDisconnect)) or started:
                raise
            # whatever the handler raised once the body stopped coming, nobody is left to answer
            gone = True
        finally:
            self._record(scope, CLIENT_CLOSED if gone else status, time.perf_counter() - start)
            in_flight.dec()
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        svc = self.metrics.service
        self.metrics.requests.labels(svc, method, template, str(status)).inc()
        self.metrics.duration.labels(svc, method, template).observe(elapsed)
        if template in ("/metrics", "/health", "/health/", "/ready"):
            return
        extra = {"route": template, "status": status, "duration_ms": round(elapsed * 1000, 3)}
        if status == CLIENT_CLOSED:
            self.log.warning(
                "%s %s: the client closed the connection before the answer",
                method,
                scope["path"],
                extra=extra,
            )
        else:
            self.log.info("%s %s %s", method, scope["path"], status, extra=extra)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text[:64]
    return None


_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO", json_logs: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(service)
        if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.Formatter.converter = time.gmtime
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
