"""MLflow model directories: `MLmodel` with the sklearn flavor, or python_function with loader mlflow.sklearn.

Read without MLflow: the YAML names the serialized estimator (pickle, cloudpickle or skops) and
carries the signature as JSON colspecs, which become the served model's column names and types.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import yaml

from model_serving.loading.errors import ModelLoadError
from model_serving.loading.signature import Signature
from model_serving.loading.sklearn_flavor import SklearnModel

SUPPORTED = "the sklearn flavor, or python_function with loader_module mlflow.sklearn"
# tensor-spec dtypes in MLflow's colspec vocabulary
_TENSOR_TYPES = {
    "float64": "double",
    "float32": "float",
    "int64": "long",
    "int32": "integer",
    "bool": "boolean",
}


def find_mlmodel(directory: Path) -> Path | None:
    """`MLmodel` at the root of the artifacts or one directory down (an artifact path such as model/)."""
    if (directory / "MLmodel").is_file():
        return directory / "MLmodel"
    found = sorted(p for p in directory.glob("*/MLmodel") if p.is_file())
    if len(found) > 1:
        raise ModelLoadError(f"several MLflow models in one version: {[str(p.parent.name) for p in found]}")
    return found[0] if found else None


def load_mlflow(mlmodel: Path) -> SklearnModel:
    meta = _read_mlmodel(mlmodel)
    file, serialization = _model_data(mlmodel.parent, meta["flavors"])
    estimator = _deserialize(file, serialization)
    return SklearnModel(estimator, flavor="mlflow.sklearn", declared=_signature(meta.get("signature")))


def _read_mlmodel(mlmodel: Path) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"MLmodel is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("flavors"), dict):
        raise ModelLoadError("MLmodel has no flavors section")
    return meta


def _model_data(model_dir: Path, flavors: dict[str, Any]) -> tuple[Path, str]:
    """The serialized estimator's file and its serialization format."""
    sklearn = flavors.get("sklearn")
    pyfunc = flavors.get("python_function")
    if isinstance(sklearn, dict) and sklearn.get("pickled_model"):
        data, serialization = str(sklearn["pickled_model"]), str(sklearn.get("serialization_format") or "")
    elif isinstance(pyfunc, dict) and _sklearn_pyfunc(pyfunc):
        data, serialization = str(pyfunc["model_path"]), ""
    else:
        loader = pyfunc.get("loader_module") if isinstance(pyfunc, dict) else None
        what = f"python_function loader {loader!r}" if loader else f"flavors {sorted(flavors)}"
        raise ModelLoadError(f"MLflow model with {what} is not supported; served: {SUPPORTED}")
    file = (model_dir / data).resolve()
    if not file.is_relative_to(model_dir.resolve()) or not file.is_file():
        raise ModelLoadError(f"MLmodel names model data {data!r}, which is not a file in the model directory")
    if not serialization:
        serialization = "skops" if file.suffix == ".skops" else "cloudpickle"
    return file, serialization


def _sklearn_pyfunc(pyfunc: dict[str, Any]) -> bool:
    return pyfunc.get("loader_module") == "mlflow.sklearn" and bool(pyfunc.get("model_path"))


def _deserialize(file: Path, serialization: str) -> Any:
    if serialization not in ("pickle", "cloudpickle", "skops"):
        raise ModelLoadError(f"unknown MLflow sklearn serialization_format {serialization!r}")
    try:
        if serialization == "skops":
            return _load_skops(file)
        with file.open("rb") as handle:
            # a cloudpickle file is a pickle stream; it imports cloudpickle itself when it needs it
            return pickle.load(handle)  # registry artifacts whose sha256 was verified: see the package doc
    except ModelLoadError:
        raise
    except Exception as exc:
        raise ModelLoadError.unreadable(file.name, f"{serialization} file", exc) from exc


def _load_skops(file: Path) -> Any:
    try:
        import skops.io
    except ImportError as exc:
        advice = "save it with serialization_format='cloudpickle'"
        raise ModelLoadError(f"the model is saved with skops, which is not installed; {advice}") from exc
    # the same trust as a pickle: an artifact from our registry with a verified checksum
    return skops.io.load(file, trusted=skops.io.get_untrusted_types(file=file))


def _signature(raw: Any) -> Signature | None:
    """MLmodel's `signature.inputs`: a JSON list of colspecs or one tensor spec."""
    if not isinstance(raw, dict) or not raw.get("inputs"):
        return None
    try:
        specs = json.loads(raw["inputs"]) if isinstance(raw["inputs"], str) else raw["inputs"]
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"MLmodel signature inputs are not JSON: {exc}") from exc
    if not isinstance(specs, list) or not all(isinstance(s, dict) for s in specs):
        raise ModelLoadError("MLmodel signature inputs are not a list of column specs")
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        return _tensor_signature(specs[0].get("tensor-spec") or {})
    names = tuple(str(s["name"]) for s in specs) if all("name" in s for s in specs) else None
    return Signature(names, len(specs), tuple(str(s.get("type", "double")) for s in specs), None)


def _tensor_signature(spec: dict[str, Any]) -> Signature:
    shape = spec.get("shape") or []
    n_features = int(shape[1]) if len(shape) == 2 and int(shape[1]) > 0 else None
    kind = _TENSOR_TYPES.get(str(spec.get("dtype")), str(spec.get("dtype")))
    types = (kind,) * n_features if n_features is not None else None
    return Signature(None, n_features, types, None)
