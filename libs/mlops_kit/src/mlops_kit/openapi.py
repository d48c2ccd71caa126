"""OpenAPI fragments for routes that parse their own body (`openapi_extra`): schemas that resolve.

Pydantic's `model_json_schema()` puts nested models under `$defs` and points at them with
`#/$defs/...`, which means nothing inside an OpenAPI document; `inline_schema` substitutes them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

JSON = "application/json"


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's validation JSON schema with every `$ref` replaced by what it names."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    inlined: dict[str, Any] = _substitute(schema, defs)
    return inlined


def _substitute(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**_substitute(defs[ref.removeprefix("#/$defs/")], defs), **rest}
        return {key: _substitute(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_substitute(item, defs) for item in node]
    return node


def json_body(schema: type[BaseModel] | dict[str, Any], **other_content: Any) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON request body (and any other media types)."""
    resolved = inline_schema(schema) if isinstance(schema, type) else schema
    content = {JSON: {"schema": resolved}, **other_content}
    return {"requestBody": {"required": True, "content": content}}


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}
ANY_TYPE = ("*/*",)  # a stored file answers with the media type its name suggests


def file_responses(
    *statuses: int, media_types: tuple[str, ...] = ("application/octet-stream",)
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that streams bytes (pair it with `response_class=Response`)."""
    content = {media: {"schema": BINARY} for media in media_types}
    return {status: {"description": "the file's bytes", "content": content} for status in statuses}


def answers(model: type[BaseModel], status: int = 200, description: str = "Success") -> dict[int | str, Any]:
    """`responses=` documenting what a route returns as a plain dict or a prebuilt response: pair
    with `response_model=None` (no validation or copy at run time; `make fuzz` holds the two together)."""
    return {status: {"model": model, "description": description}}
