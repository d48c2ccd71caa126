"""The prediction routes: the original documents' `/predict` and `/model-info`, the deployments'
own `predict`, MLflow's scoring protocol (`/invocations`) and the Open Inference Protocol v2.

Bodies are read raw and decoded by `model_serving.protocols` (orjson, no per-value objects);
answers are orjson bytes. Predicting is a read as far as roles go (a viewer key may predict) and
is not audited per request (it is counted in Prometheus instead)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi import Path as FastApiPath
from fastapi.responses import PlainTextResponse
from mlops_kit.deps import NOT_AUDITED, READ_ONLY
from mlops_kit.errors import AppError, parse_json
from mlops_kit.openapi import json_body
from pydantic import BaseModel

from model_serving import protocols
from model_serving.deps import DeploymentPath
from model_serving.errors import (
    DeploymentFailed,
    InvalidInput,
    ModelNotLoaded,
    NoDeployment,
    UnsupportedMediaType,
    VersionNotServed,
)
from model_serving.predict import schemas
from model_serving.predict.service import Answer, Predictor
from model_serving.protocols import Inputs, ProtocolError
from model_serving.runtime.manager import Runtime
from model_serving.runtime.state import Live

router = APIRouter(tags=["predictions"])
CSV_BODY = {"text/csv": {"schema": {"type": "string", "maxLength": 64 * 1024 * 1024}}}
JSON = "application/json"


def _doc(model: type[BaseModel], **other: Any) -> dict[str, Any]:
    """A prediction route's OpenAPI extras: a viewer may call it, it is not audited per request,
    and its body is documented by `model` (decoded by `protocols`)."""
    return {**READ_ONLY, **NOT_AUDITED, **json_body(model, **other)}


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _predictor(request: Request) -> Predictor:
    return request.app.state.predictor  # type: ignore[no-any-return]


def _live(request: Request, name: str | None) -> Live:
    runtime = _runtime(request)
    live = runtime.get(name, request.app.state.settings.default_deployment)
    if live is None:
        if name is None:
            raise NoDeployment("nothing is deployed yet: POST /api/deployments first")
        from model_serving.errors import DeploymentNotFound

        raise DeploymentNotFound(f"deployment {name!r} does not exist", {"name": name})
    return live


async def _run(request: Request, name: str | None, decode: Callable[[bytes], Inputs]) -> Answer:
    """Decode the body (a malformed one is refused before anything else), find the deployment,
    predict; failures are counted by kind."""
    metrics = request.app.state.serving_metrics
    raw = await request.body()
    try:
        inputs = decode(raw)
    except ProtocolError as exc:
        metrics.error(name or "", "protocol")
        if raw and request.headers.get("content-type", JSON).startswith(JSON):
            parse_json(raw)  # malformed JSON: the platform's 400 INVALID_JSON with line and column
        if exc.status_code == 415:
            raise UnsupportedMediaType(str(exc), exc.details) from None
        raise InvalidInput(str(exc), exc.details, code=exc.code) from None
    live = _live(request, name)
    try:
        return await _predictor(request).predict(live, inputs)
    except (ModelNotLoaded, DeploymentFailed):
        metrics.error(live.spec.name, "not_loaded")
        raise
    except InvalidInput:
        metrics.error(live.spec.name, "input")
        raise
    except AppError:  # the feature store refused or did not answer
        metrics.error(live.spec.name, "features")
        raise


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type=JSON)


def _row(answer: Answer, i: int, with_ids: bool = True) -> dict[str, Any]:
    s = answer.rows[i]
    row: dict[str, Any] = {
        "prediction": s.prediction,
        "probability": s.probability,
        "model_version": s.version,
    }
    if with_ids:
        row["request_id"] = s.request_id
        if s.variant is not None:
            row["variant"] = s.variant
    return row


# ---- the original documents' API ----------------------------------------------------------------


@router.post(
    "/predict",
    response_model=schemas.PredictRead,
    openapi_extra=_doc(schemas.PredictBody),
    summary="Predict with the default deployment: {'features': [...]} (one row, or a list of rows)",
)
async def predict(request: Request) -> Response:
    answer = await _run(request, None, protocols.decode_predict)
    timestamp = answer.timestamp.isoformat()
    if answer.single:
        return _json({**_row(answer, 0), "timestamp": timestamp, "deployment": answer.deployment})
    rows = [_row(answer, i) for i in range(len(answer.rows))]
    return _json({"predictions": rows, "timestamp": timestamp, "deployment": answer.deployment})


@router.get("/model-info", response_model=schemas.ModelInfo, summary="What the default deployment serves")
def model_info(request: Request) -> dict[str, Any]:
    return _info(_live(request, None))


def _info(live: Live) -> dict[str, Any]:
    current = live.current
    return {
        "deployment": live.spec.name,
        "model_name": live.spec.model,
        "model_version": current.version if current else None,
        "flavor": current.loaded.flavor if current else None,
        "loaded_at": current.loaded_at.isoformat() if current else None,
        "state": live.state,
        "target": {"kind": live.spec.target[0], "value": live.spec.target[1]},
        "signature": current.loaded.signature.describe() if current else None,
        "experiment": live.routing.experiment.key if live.routing else None,
    }


# ---- the deployments' own route -----------------------------------------------------------------


@router.post(
    "/api/deployments/{name}/predict",
    response_model=schemas.DeploymentPredictRead,
    openapi_extra=_doc(schemas.DeploymentPredictBody),
    summary="Predict one row or a batch (`instances` or named `inputs`), with user_id / entity keys",
)
async def deployment_predict(name: DeploymentPath, request: Request) -> Response:
    answer = await _run(request, name, protocols.decode_deployment_predict)
    return _json(
        {
            "deployment": answer.deployment,
            "model": answer.model,
            "predictions": [_row(answer, i) for i in range(len(answer.rows))],
            "classes": answer.classes,
            "timestamp": answer.timestamp.isoformat(),
        }
    )


@router.get(
    "/api/deployments/{name}/model-info", response_model=schemas.ModelInfo, summary="What a deployment serves"
)
def deployment_info(name: DeploymentPath, request: Request) -> dict[str, Any]:
    return _info(_live(request, name))


# ---- MLflow scoring protocol --------------------------------------------------------------------


def _invocations(request: Request) -> Callable[[bytes], Inputs]:
    content_type = request.headers.get("content-type", JSON)
    return lambda body: protocols.decode_invocations(body, content_type)


def _mlflow_answer(answer: Answer) -> Response:
    return Response(protocols.encode_invocations([s.prediction for s in answer.rows], None), media_type=JSON)


@router.post(
    "/invocations",
    response_model=schemas.InvocationsRead,
    openapi_extra=_doc(schemas.InvocationsBody, **CSV_BODY),
    summary="MLflow's scoring protocol for the default deployment (dataframe_split, dataframe_records, "
    "instances, inputs; or text/csv)",
)
async def invocations(request: Request) -> Response:
    return _mlflow_answer(await _run(request, None, _invocations(request)))


@router.post(
    "/api/deployments/{name}/invocations",
    response_model=schemas.InvocationsRead,
    openapi_extra=_doc(schemas.InvocationsBody, **CSV_BODY),
    summary="MLflow's scoring protocol for one deployment",
)
async def deployment_invocations(name: DeploymentPath, request: Request) -> Response:
    return _mlflow_answer(await _run(request, name, _invocations(request)))


@router.get(
    "/ping",
    summary="MLflow's scoring server health check (200 once every deployment is loaded or failed)",
    responses={
        200: {
            "description": "ready",
            "content": {JSON: {"schema": {"type": "object", "properties": {"status": {"type": "string"}}}}},
        }
    },
)
def ping(request: Request) -> Response:
    if not _runtime(request).ready():
        raise ModelNotLoaded("a deployment is still loading its model")
    return _json({"status": "ok"})


@router.get(
    "/version",
    summary="The server's version (what MLflow's scoring client asks)",
    response_class=PlainTextResponse,
    responses={200: {"description": "version", "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def version(request: Request) -> Response:
    return Response(request.app.version, media_type="text/plain")


# ---- Open Inference Protocol v2 -----------------------------------------------------------------


@router.get("/v2", response_model=schemas.V2Server, summary="OIP v2 server metadata")
def v2_server(request: Request) -> dict[str, Any]:
    return {"name": "mlops-model-serving", "version": request.app.version, "extensions": []}


@router.get("/v2/health/live", response_model=schemas.V2Live, summary="OIP v2 liveness")
def v2_live() -> dict[str, Any]:
    return {"live": True}


@router.get(
    "/v2/health/ready",
    response_model=schemas.V2Ready,
    summary="OIP v2 readiness (every deployment loaded or failed)",
)
def v2_ready(request: Request) -> Response:
    if not _runtime(request).ready():
        raise ModelNotLoaded("a deployment is still loading its model")
    return _json({"ready": True})


@router.get(
    "/v2/models/{name}",
    response_model=schemas.V2Metadata,
    summary="OIP v2 model metadata (the model is a deployment)",
)
def v2_metadata(name: DeploymentPath, request: Request) -> dict[str, Any]:
    live = _live(request, name)
    current = live.current
    if current is None and live.state == "FAILED":
        raise DeploymentFailed(f"deployment {name!r} has no model to serve: {live.last_error}")
    if current is None:
        raise ModelNotLoaded(f"deployment {name!r} has no model loaded yet", {"deployment": name})
    return protocols.v2_model_metadata(name, [current.version], current.loaded.flavor, *_v2_tensors(live))


def _v2_tensors(live: Live) -> tuple[list[tuple[str, str, list[int]]], list[tuple[str, str, list[int]]]]:
    assert live.current is not None
    signature = live.current.loaded.signature
    if signature.names:
        inputs = [(n, "FP64", [-1]) for n in signature.names]
    else:
        inputs = [("input-0", "FP64", [-1, signature.n_features or -1])]
    outputs = [("predict", "FP64", [-1]), ("predict_proba", "FP64", [-1, -1])]
    return inputs, outputs


@router.get("/v2/models/{name}/ready", response_model=schemas.V2Ready, summary="OIP v2 model readiness")
def v2_model_ready(name: DeploymentPath, request: Request) -> Response:
    live = _live(request, name)
    return _json({"name": name, "ready": live.current is not None})


async def _v2_infer(request: Request, name: str, version: str | None) -> Response:
    live = _live(request, name) if version is not None else None
    if live is not None and (live.current is None or live.current.version != version):
        loaded = live.current.version if live.current else None
        raise VersionNotServed(
            f"deployment {name!r} serves version {loaded}, not {version}",
            {"served": loaded, "asked": version},
        )
    answer = await _run(request, name, protocols.decode_v2_infer)
    first = answer.rows[0]
    probabilities = None
    if all(s.probability is not None for s in answer.rows):
        probabilities = [s.probability or [] for s in answer.rows]
    body = protocols.encode_v2_infer(
        name, first.version, first.request_id, [s.prediction for s in answer.rows], probabilities
    )
    return Response(body, media_type=JSON)


@router.post(
    "/v2/models/{name}/infer",
    openapi_extra=_doc(schemas.V2InferBody),
    response_model=schemas.V2InferRead,
    summary="OIP v2 inference (KServe, MLServer, Triton clients)",
)
async def v2_infer(name: DeploymentPath, request: Request) -> Response:
    return await _v2_infer(request, name, None)


@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    openapi_extra=_doc(schemas.V2InferBody),
    response_model=schemas.V2InferRead,
    summary="OIP v2 inference, checked against the version served",
)
async def v2_infer_version(
    name: DeploymentPath, version: Annotated[str, FastApiPath(max_length=64)], request: Request
) -> Response:
    return await _v2_infer(request, name, version)
