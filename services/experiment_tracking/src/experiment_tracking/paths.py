"""Path parameters, with the rules the services check stated in the OpenAPI (documentation only:
the checks answer in their own error codes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

ExperimentIdPath = Annotated[
    str,
    Path(
        max_length=256,
        description="experiment id: a non-negative integer",
        json_schema_extra={"pattern": "^[0-9]{1,18}$"},
    ),
]
RunIdPath = Annotated[
    str,
    Path(
        max_length=256,
        description="run id: up to 32 letters and digits",
        json_schema_extra={"pattern": "^[A-Za-z0-9]{1,32}$"},
    ),
]
