"""Dependencies shared by serving's routers: the runtime, the caller, path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from mlops_kit.auth import Principal

from model_serving.runtime.loop import RuntimeLoop
from model_serving.runtime.manager import Runtime

DeploymentPath = Annotated[
    str,
    Path(
        max_length=64,
        description="deployment name",
        json_schema_extra={"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
    ),
]


def actor(request: Request) -> str:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.name if principal else "anonymous"


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _loop(request: Request) -> RuntimeLoop:
    return request.app.state.runtime_loop  # type: ignore[no-any-return]


ActorDep = Annotated[str, Depends(actor)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
LoopDep = Annotated[RuntimeLoop, Depends(_loop)]
