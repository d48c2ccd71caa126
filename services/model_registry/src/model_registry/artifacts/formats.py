"""A version's artifact format, told from its files' names and first bytes (never by loading them)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

HEAD_BYTES = 4096

BY_SUFFIX = {
    ".onnx": "onnx",
    ".ubj": "xgboost-ubj",
    ".cbm": "catboost-cbm",
    ".pkl": "pkl",
    ".pickle": "pkl",
    ".joblib": "joblib",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".h5": "keras-h5",
    ".hdf5": "keras-h5",
    ".keras": "keras",
    ".safetensors": "safetensors",
}


def _head(file: Path) -> bytes:
    with open(file, "rb") as fh:
        return fh.read(HEAD_BYTES)


def _by_content(name: str, head: bytes, framework: str) -> str | None:
    suffix = PurePosixPath(name).suffix.lower()
    text = head.lstrip()
    if suffix == ".json" and text.startswith(b"{"):
        if b'"learner"' in head or framework == "xgboost":
            return "xgboost-json"
        return None
    if text.startswith(b"tree\nversion=") or (suffix == ".txt" and framework == "lightgbm"):
        return "lightgbm-txt"
    if head.startswith(b"CBM1"):
        return "catboost-cbm"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "keras-h5"
    if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle's PROTO opcode
        return "pkl"
    return None


def detect(files: list[tuple[str, Path]], framework: str) -> str | None:
    """The format of an upload (artifact path, local file), or None when nothing tells."""
    names = {PurePosixPath(path).name for path, _ in files}
    if "saved_model.pb" in names:
        return "tensorflow-savedmodel"
    for path, file in files:
        found = BY_SUFFIX.get(PurePosixPath(path).suffix.lower()) or _by_content(path, _head(file), framework)
        if found is not None:
            return found
    return None
