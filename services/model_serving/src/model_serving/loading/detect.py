"""Which library reads a version's artifacts: decided by file content and extension, never by trying each."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from model_serving.loading.errors import ModelLoadError
from model_serving.loading.signature import LoadedModel

PICKLE = "pickle"
XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"
ONNX = "onnx"

_PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
_COMPRESSION_SUFFIXES = frozenset({".gz", ".z", ".bz2", ".xz", ".lzma", ".lz4"})  # joblib's compressors
_XGBOOST_SUFFIXES = frozenset({".ubj", ".model", ".bst", ".xgb"})
_HEAD_BYTES = 4096
EXPECTED = (
    "a pickle/joblib file (.pkl, .pickle, .joblib), an XGBoost model (.json, .ubj, .model, .bst), "
    "a LightGBM text model (.txt), an ONNX model (.onnx) or an MLflow model directory (MLmodel)"
)


def load_model(path: Path) -> LoadedModel:
    """The model in `path`: a directory of one version's downloaded artifacts, or one model file."""
    path = Path(path)
    if path.is_file():
        return _load_file(path, sniff(path))
    if not path.is_dir():
        raise ModelLoadError(f"no model artifacts at {path}")
    from model_serving.loading.mlflow_flavor import find_mlmodel, load_mlflow

    mlmodel = find_mlmodel(path)
    if mlmodel is not None:
        return load_mlflow(mlmodel)
    files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f, path))
    if not files:
        raise ModelLoadError(f"the model's artifacts are empty: expected {EXPECTED}")
    if len(files) == 1:
        return _load_file(files[0], sniff(files[0]))
    known = [(f, fmt) for f in files if (fmt := sniff(f)) is not None]
    if len(known) != 1:
        names = [str(f.relative_to(path)) for f in files]
        raise ModelLoadError(f"expected one model file among the artifacts, found {len(known)} in {names}")
    return _load_file(*known[0])


def sniff(file: Path) -> str | None:
    """The model format of one file, or None when it is none we serve."""
    with file.open("rb") as handle:
        head = handle.read(_HEAD_BYTES)
    suffixes = {s.lower() for s in file.suffixes}
    suffix = file.suffix.lower()
    if head.startswith((b"tree\n", b"tree\r\n")):
        return LIGHTGBM
    if suffix == ".onnx":
        return ONNX
    if suffix in _PICKLE_SUFFIXES or (suffix in _COMPRESSION_SUFFIXES and suffixes & _PICKLE_SUFFIXES):
        return PICKLE
    if suffix in _XGBOOST_SUFFIXES or (suffix == ".json" and b'"learner"' in head):
        return XGBOOST
    if suffix == ".txt":
        return LIGHTGBM if b"version=v" in head else None
    if suffix in (".json", ".txt"):
        return None
    return _sniff_content(head)


def _sniff_content(head: bytes) -> str | None:
    """Files without a telling extension: pickle protocol 2+ opcode, XGBoost UBJSON or JSON learner."""
    if head.startswith(b"\x80"):
        return PICKLE
    if (head.startswith(b"{L") and b"learner" in head[:32]) or head.lstrip().startswith(b'{"learner"'):
        return XGBOOST
    return None


def _load_file(file: Path, fmt: str | None) -> LoadedModel:
    if fmt is None:
        raise ModelLoadError(f"unknown model format: {file.name}; expected {EXPECTED}")
    return _loader(fmt)(file)


def _loader(fmt: str) -> Callable[[Path], LoadedModel]:
    # each library is imported only when a model needs it
    if fmt == PICKLE:
        from model_serving.loading.sklearn_flavor import load_joblib

        return load_joblib
    if fmt == XGBOOST:
        from model_serving.loading.xgboost_flavor import load_xgboost

        return load_xgboost
    if fmt == LIGHTGBM:
        from model_serving.loading.lightgbm_flavor import load_lightgbm

        return load_lightgbm
    from model_serving.loading.onnx_flavor import load_onnx

    return load_onnx


def _hidden(file: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in file.relative_to(root).parts)
