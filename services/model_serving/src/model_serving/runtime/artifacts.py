"""A version's artifacts, downloaded from the registry into a local cache and checked.

Every file is verified against the sha256 the registry recorded at upload before anything is
loaded from it, and again when a cached copy is reused: pickles are code, and this is the only
place model files come from (the trust rule in `model_serving.loading`)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from mlops_client import RegistryClient
from mlops_client.models import Artifact

from model_serving.loading import ModelLoadError

MARKER = ".verified"


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _safe(root: Path, name: str) -> Path:
    parts = PurePosixPath(name).parts
    if not parts or any(p in ("..", "") for p in parts) or PurePosixPath(name).is_absolute():
        raise ModelLoadError(f"artifact path {name!r} leaves the version's directory")
    return root.joinpath(*parts)


def _verified(directory: Path, artifacts: list[Artifact]) -> bool:
    if not (directory / MARKER).is_file():
        return False
    try:
        return all(_sha256(_safe(directory, a.path)) == a.sha256 for a in artifacts)
    except OSError:
        return False


def fetch(client: RegistryClient, cache: Path, model: str, version: str) -> Path:
    """The directory holding `model` `version`'s files, each checked against its sha256."""
    artifacts = client.list_artifacts(model, version)
    if not artifacts:
        raise ModelLoadError(f"{model} version {version} has no artifact to load")
    target = cache / model / version
    if _verified(target, artifacts):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model}-{version}-", dir=cache))
    try:
        for artifact in artifacts:
            path = _safe(staging, artifact.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_artifact(model, version, path, path=artifact.path)
            if _sha256(path) != artifact.sha256:
                raise ModelLoadError(f"{artifact.path} of {model} {version} does not match its sha256")
        (staging / MARKER).write_text("\n".join(f"{a.sha256}  {a.path}" for a in artifacts) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
