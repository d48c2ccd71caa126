"""Request dependencies: the principal, the request's transaction, the artifact store."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from mlops_kit.audit import write_audit
from mlops_kit.auth import Principal, Role
from mlops_kit.db import Database, run_callbacks
from mlops_kit.errors import Forbidden, Unauthorized
from mlops_kit.storage import ArtifactStore

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")
# a POST that only reads (a search with a body): `@router.post(..., openapi_extra=READ_ONLY)`
READ_ONLY: dict[str, object] = {"x-read-only": True}
# a machine-to-machine write too frequent and too small to audit (a worker's heartbeat):
# `@router.post(..., openapi_extra=NOT_AUDITED)`
NOT_AUDITED: dict[str, object] = {"x-not-audited": True}


def is_read(request: Request) -> bool:
    if request.method in READ_METHODS:
        return True
    route = request.scope.get("route")
    return bool((getattr(route, "openapi_extra", None) or {}).get("x-read-only"))


def _presented_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def authenticate(request: Request) -> Principal:
    principal: Principal | None = request.app.state.keyring.authenticate(_presented_key(request))
    if principal is None:
        raise Unauthorized("missing or unknown API key: send 'Authorization: Bearer <key>'")
    request.state.principal = principal
    return principal


async def authorize(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    """Method-based default: reads need viewer, writes need editor."""
    needed = Role.viewer if is_read(request) else Role.editor
    if principal.role < needed:
        raise Forbidden(f"role {principal.role.name!r} may not {request.method}; needs {needed.name}")
    return principal


def require(role: Role) -> Any:
    async def _check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role < role:
            raise Forbidden(f"this action needs role {role.name!r}; you have {principal.role.name!r}")
        return principal

    return Depends(_check)


@contextmanager
def transaction(request: Request) -> Iterator[Session]:
    """The request's one transaction: writes are audited and committed together, or rolled back."""
    db: Database = request.app.state.db
    write = not is_read(request)
    session = db.session(write=write)
    try:
        yield session
        route_extra = getattr(request.scope.get("route"), "openapi_extra", None) or {}
        if write and not route_extra.get("x-not-audited"):
            audit_request(request, session, getattr(request.state, "audit_details", None))
        session.commit()
    except BaseException:
        session.rollback()
        run_callbacks(session, "on_rollback")
        session.info.pop("after_commit", None)
        raise
    else:
        session.info.pop("on_rollback", None)
        run_callbacks(session, "after_commit")
    finally:
        session.close()


def audit_request(request: Request, session: Session, details: dict[str, Any] | None = None) -> None:
    """This request's audit entry (who, what, when), written in `session`."""
    principal: Principal | None = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    write_audit(
        session,
        request.app.state.audit_table,
        actor=principal.name if principal else "anonymous",
        role=principal.role.name if principal else "none",
        method=request.method,
        path=request.url.path[:1024],
        route=getattr(route, "path", None),
        status=getattr(route, "status_code", None) or 200,
        request_id=getattr(request.state, "request_id", None),
        details=details,
    )


async def audit_alone(request: Request, details: dict[str, Any] | None = None) -> None:
    """The audit entry of a request that stores data outside a transaction of its own (a
    buffered write, or one a viewer may make such as an A/B exposure): a short write of its own."""

    def write() -> None:
        with request.app.state.db.session(write=True) as session:
            audit_request(request, session, details)
            session.commit()

    await run_in_threadpool(write)


def _session(request: Request) -> Iterator[Session]:
    with transaction(request) as session:
        yield session


async def run_transaction(request: Request, work: Callable[[Session], T]) -> T:
    """A hot endpoint's whole unit of work in one worker-thread hop instead of three (dependency
    enter, endpoint, dependency exit). Never run a write on the event loop itself: on SQLite it
    would wait for the write lock while the loop is the one that must let the holder commit."""

    def unit() -> T:
        with transaction(request) as session:
            return work(session)

    return await run_in_threadpool(unit)


async def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _store(request: Request) -> ArtifactStore:
    store: ArtifactStore = request.app.state.store
    return store


SessionDep = Annotated[Session, Depends(_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(_database)]
StoreDep = Annotated[ArtifactStore, Depends(_store)]
PrincipalDep = Annotated[Principal, Depends(authorize)]
