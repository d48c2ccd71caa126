from __future__ import annotations

from pydantic import BaseModel


class ArtifactFileRead(BaseModel):
    path: str
    is_dir: bool
    file_size: int | None = None  # left out of the answer for a directory (the route excludes unset)


class ArtifactListRead(BaseModel):
    path: str
    files: list[ArtifactFileRead]


class ArtifactRead(BaseModel):
    """One stored artifact file."""

    path: str
    size: int
    sha256: str
