from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from mlops_kit.deps import SessionDep, run_transaction
from mlops_kit.pagination import Limit, Offset, page_fields
from sqlalchemy.orm import Session

from model_serving.deployments import repository as repo
from model_serving.deployments import service
from model_serving.deployments.schemas import (
    DeploymentCreate,
    DeploymentPage,
    DeploymentRead,
    DeploymentUpdate,
    LegacyDeploy,
)
from model_serving.deps import ActorDep, DeploymentPath, LoopDep, RuntimeDep
from model_serving.tables import Deployment

router = APIRouter(tags=["deployments"])


@router.post("/api/deployments", status_code=201, response_model=DeploymentRead, summary="Deploy a model")
async def create_deployment(
    body: DeploymentCreate, request: Request, who: ActorDep, runtime: RuntimeDep, loop: LoopDep
) -> DeploymentRead:
    row = await run_transaction(request, lambda s: service.create(s, body, who))
    runtime.with_spec(service.spec(row))
    await loop.settled(request.app.state.settings.deploy_wait_seconds)
    return service.read(row, runtime.get(row.name))


@router.post(
    "/api/v1/deployment/deploy",
    status_code=201,
    response_model=DeploymentRead,
    summary="Deploy with the orchestration document's DeploymentConfig body (creates or re-targets)",
)
async def legacy_deploy(
    body: LegacyDeploy, request: Request, who: ActorDep, runtime: RuntimeDep, loop: LoopDep
) -> DeploymentRead:
    wanted = service.from_legacy(body)

    def work(session: Session) -> Deployment:
        existing = repo.get_for_update(session, wanted.name)
        if existing is None:
            return service.create(session, wanted, who)
        change = DeploymentUpdate(version=wanted.version, replicas=wanted.replicas)
        if wanted.version is None:
            change = DeploymentUpdate(alias="production", replicas=wanted.replicas)
        return service.update(session, existing, change)

    row = await run_transaction(request, work)
    runtime.with_spec(service.spec(row))
    await loop.settled(request.app.state.settings.deploy_wait_seconds)
    return service.read(row, runtime.get(row.name))


@router.get("/api/deployments", response_model=DeploymentPage, summary="List deployments")
def list_deployments(
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Limit = 100,
    offset: Offset = 0,
    model: Annotated[str | None, Query(max_length=128, description="only this model's")] = None,
) -> DeploymentPage:
    rows, total = repo.page(session, limit, offset, model)
    items = [service.read(r, runtime.get(r.name)) for r in rows]
    return DeploymentPage(items=items, **page_fields(total, limit, offset))


@router.get("/api/deployments/{name}", response_model=DeploymentRead, summary="A deployment and its status")
def get_deployment(name: DeploymentPath, session: SessionDep, runtime: RuntimeDep) -> DeploymentRead:
    return service.read(service.load(session, name), runtime.get(name))


@router.patch("/api/deployments/{name}", response_model=DeploymentRead, summary="Change a deployment")
async def update_deployment(
    name: DeploymentPath, body: DeploymentUpdate, request: Request, runtime: RuntimeDep, loop: LoopDep
) -> DeploymentRead:
    row = await run_transaction(
        request, lambda s: service.update(s, service.load(s, name, for_update=True), body)
    )
    runtime.with_spec(service.spec(row))
    await loop.settled(request.app.state.settings.deploy_wait_seconds)
    return service.read(row, runtime.get(name))


@router.delete("/api/deployments/{name}", status_code=204, summary="Stop serving a deployment")
async def delete_deployment(
    name: DeploymentPath, request: Request, runtime: RuntimeDep, loop: LoopDep
) -> None:
    await run_transaction(request, lambda s: service.delete(s, name))
    runtime.forget([name])
    loop.nudge()
