"""The app factory every service uses: lifespan-owned backends, auth, errors, metrics, health."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import Table, func, select

from mlops_kit.auth import KeyRing, Role
from mlops_kit.db import Database, run_migrations
from mlops_kit.deps import SessionDep, authorize, require
from mlops_kit.docs import docs_router
from mlops_kit.errors import (
    RETRY_AFTER_SECONDS,
    AppError,
    ErrorRenderer,
    JsonResponse,
    error_responses,
    install_error_handlers,
)
from mlops_kit.limits import BodyLimitMiddleware, RequestTimeoutMiddleware, SqliteWriteGate
from mlops_kit.nul_guard import NulGuardMiddleware
from mlops_kit.observability import Metrics, ObservabilityMiddleware, configure_logging
from mlops_kit.pagination import Limit, Offset, page_fields
from mlops_kit.settings import ServiceSettings
from mlops_kit.storage import build_store

log = logging.getLogger("mlops.app")


@dataclass
class ServiceSpec:
    """What a service hands the factory."""

    title: str
    version: str
    routers: Sequence[APIRouter]
    audit_table: Table
    migrations: Path
    description: str = ""
    uses_artifacts: bool = True
    on_startup: list[Callable[[FastAPI], Any]] = field(default_factory=list)
    on_shutdown: list[Callable[[FastAPI], Any]] = field(default_factory=list)
    openapi_tags: list[dict[str, Any]] = field(default_factory=list)
    error_renderer: ErrorRenderer | None = None
    # pure ASGI middleware wrapped right around the routes (inside timeouts, limits and metrics):
    # a service's hot-path handlers that answer without FastAPI's routing and dependencies
    inner_middleware: list[type] = field(default_factory=list)
    # the service's own backends for `/ready` beside the database and artifact store, by name
    # (e.g. "online_store"): an awaitable that raises when the backend cannot be used
    ready_checks: dict[str, Callable[[FastAPI], Awaitable[None]]] = field(default_factory=dict)


def create_service_app(settings: ServiceSettings, spec: ServiceSpec) -> FastAPI:
    metrics = Metrics(settings.service_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        if not settings.auth_enabled:
            log.warning("no API keys configured: auth is OFF; bind to 127.0.0.1 only")
        settings.service_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        if settings.migrate_on_start:
            await anyio.to_thread.run_sync(run_migrations, url, spec.migrations)
        app.state.db = Database.connect(url, pool_size=settings.db_pool_size, timeouts=settings.db_timeouts)
        app.state.store = build_store(settings) if spec.uses_artifacts else None
        for hook in spec.on_startup:
            await _maybe_await(hook(app))
        try:
            yield
        finally:
            for hook in spec.on_shutdown:
                await _maybe_await(hook(app))
            await app.state.db.adispose()

    app = FastAPI(
        title=spec.title,
        version=spec.version,
        description=spec.description,
        lifespan=lifespan,
        openapi_tags=spec.openapi_tags,
        # served by docs_router: local assets, and a key unless the docs are public
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.keyring = KeyRing(settings.parsed_api_keys)
    app.state.audit_table = spec.audit_table
    app.state.error_renderer = spec.error_renderer
    install_error_handlers(app)
    app.include_router(_system_router(spec))
    app.include_router(docs_router())
    for router in spec.routers:
        # a router's own `responses` (another API's error shape) win over the platform's
        app.include_router(router, dependencies=[Depends(authorize)], responses=error_responses())
    for middleware in spec.inner_middleware:
        app.add_middleware(middleware)  # type: ignore[arg-type]
    if settings.resolved_database_url.startswith("sqlite"):
        app.add_middleware(SqliteWriteGate, limit=8)
    app.add_middleware(NulGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_json_bytes)
    app.add_middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value


class HealthRead(BaseModel):
    status: str
    service: str
    version: str


class ReadyRead(BaseModel):
    status: str = Field(examples=["ready", "unavailable"])
    checks: dict[str, str] = Field(description="each backend: 'ok' or what failed")


class AuditPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


def _system_router(spec: ServiceSpec) -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/health", response_model=HealthRead)
    @router.get("/health/", include_in_schema=False)
    async def health(request: Request) -> dict[str, str]:
        return {"status": "ok", "service": request.app.state.settings.service_name, "version": spec.version}

    @router.get("/ready", response_model=ReadyRead, responses={503: {"model": ReadyRead}})
    async def ready(request: Request) -> JsonResponse:
        """Each backend checked at once, each within `ready_timeout_seconds`: a stalled backend is
        reported down (503) instead of holding the probe."""
        app = request.app
        checks: dict[str, Callable[[], Awaitable[None]]] = {"database": _in_thread(app.state.db.ping)}
        if app.state.store is not None:
            checks["artifact_store"] = _in_thread(app.state.store.check)
        for name, service_check in spec.ready_checks.items():
            checks[name] = functools.partial(service_check, app)
        results: dict[str, str] = {}
        limit = app.state.settings.ready_timeout_seconds
        async with anyio.create_task_group() as group:
            for name, check in checks.items():
                group.start_soon(_run_check, results, name, check, limit)
        ok = all(value == "ok" for value in results.values())
        body = {"status": "ready" if ok else "unavailable", "checks": dict(sorted(results.items()))}
        return JsonResponse(
            body, status_code=200 if ok else 503, headers=None if ok else {"Retry-After": RETRY_AFTER_SECONDS}
        )

    @router.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get(
        "/api/audit-log",
        dependencies=[require(Role.admin)],
        response_model=AuditPage,
        responses=error_responses(),
    )
    def audit_log(
        request: Request,
        session: SessionDep,
        limit: Limit = 100,
        offset: Offset = 0,
        actor: Annotated[str | None, Query(max_length=128)] = None,
    ) -> dict[str, Any]:
        table: Table = request.app.state.audit_table
        query = select(table)
        if actor:
            query = query.where(table.c.actor == actor)
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        rows = session.execute(query.order_by(table.c.id.desc()).limit(limit).offset(offset))
        return {"items": [dict(r._mapping) for r in rows], **page_fields(total or 0, limit, offset)}

    return router


def _in_thread(check: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    # a stalled call is abandoned at the deadline; its thread ends when the call's own timeout fires
    return functools.partial(anyio.to_thread.run_sync, check, abandon_on_cancel=True)


async def _run_check(
    results: dict[str, str], name: str, check: Callable[[], Awaitable[None]], limit: float
) -> None:
    try:
        with anyio.fail_after(limit):
            await check()
        results[name] = "ok"
    except TimeoutError:
        results[name] = f"error: no answer within {limit:g} s"
    except AppError as exc:
        results[name] = f"error: {exc.message}"[:300]
    except Exception as exc:
        results[name] = f"error: {type(exc).__name__}: {exc}"[:300]


def migrate(settings: ServiceSettings, migrations: Path) -> int:
    """`python -m <service> migrate`: the service's Alembic migrations to head on its configured
    database, as the lifespan runs them in embedded mode (concurrent runs take turns). Compose and
    k8s run it as a separate step before the service starts. 0 once at head; 1 with a one-line
    error on stderr otherwise. A PostgreSQL server that does not answer fails within the settings'
    connect timeout."""
    import sys

    configure_logging(settings.service_name, settings.log_level, settings.log_json)
    url = _with_connect_timeout(settings.resolved_database_url, settings.db_timeouts.connect_args())
    try:
        run_migrations(url, migrations)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0] or type(exc).__name__
        print(f"{_prog()} migrate: failed: {reason}", file=sys.stderr, flush=True)
        return 1
    log.info("database migrated to head (%s)", migrations)
    return 0


def _with_connect_timeout(url: str, connect_args: dict[str, Any]) -> str:
    """A PostgreSQL URL with the kit's connection handshake limit, unless it sets its own."""
    from sqlalchemy.engine import make_url

    from mlops_kit.db import normalize_url

    if not url.startswith(("postgresql", "postgres:")):
        return url
    parsed = make_url(normalize_url(url))
    extra = {k: str(v) for k, v in connect_args.items() if k not in parsed.query}
    return parsed.update_query_dict(extra).render_as_string(hide_password=False)


def _prog() -> str:
    """`python -m model_registry` for the usage line: the package run as __main__."""
    import sys

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = spec.name.removesuffix(".__main__") if spec is not None else "<service>"
    return f"python -m {name}"


def serve(
    app_factory: Callable[[], FastAPI],
    settings: ServiceSettings,
    factory_path: str | None = None,
    *,
    migrations: Path | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Run the service. With `settings.workers` > 1 and a `factory_path` ("module:function", called
    with no argument so each process reads its settings from the same environment), uvicorn runs
    that many processes on the port; the data layer treats them as replicas.

    The command line (`argv`, default `sys.argv[1:]`): nothing serves; `migrate` (given the
    service's `migrations`) runs them to head and exits (see `migrate`); anything else exits 2
    with the usage."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        if args == ["migrate"] and migrations is not None:
            sys.exit(migrate(settings, migrations))
        commands = "[migrate]" if migrations is not None else ""
        print(f"usage: {_prog()} {commands}".rstrip(), file=sys.stderr, flush=True)
        sys.exit(2)

    import uvicorn

    # the event loop hands blocking work to threads; with the default 5 ms GIL switch interval a
    # finished thread can wait that long for the loop to let go, which shows up as tail latency
    sys.setswitchinterval(float(os.environ.get("MLOPS_GIL_SWITCH_INTERVAL", "0.0005")))

    if settings.workers > 1 and factory_path is not None:
        uvicorn.run(
            factory_path,
            factory=True,
            workers=settings.workers,
            host=settings.bind_host,
            port=settings.bind_port,
            log_config=None,
            access_log=False,
            timeout_keep_alive=30,
        )
        return
    uvicorn.run(
        app_factory(),
        host=settings.bind_host,
        port=settings.bind_port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=30,
    )
