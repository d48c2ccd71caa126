"""Upload answers."""

from __future__ import annotations

from pydantic import BaseModel, Field

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$"


class UploadRead(BaseModel):
    uri: str = Field(description="the `mlops-artifacts://` URI a run parameter (e.g. `data_uri`) names")
    name: str
    size: int = Field(description="bytes")
    sha256: str
