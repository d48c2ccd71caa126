"""What every service's OpenAPI must hold, checked without a server (the fuzzer checks the rest)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# what a route documents besides its success: the kit adds these to every service route
REQUIRED_ERRORS = ("400", "401", "403", "404", "409", "413", "422", "503")


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield f"{method.upper()} {path}", operation


def _has_success_schema(operation: dict[str, Any]) -> bool:
    for status, response in operation.get("responses", {}).items():
        if status == "204":
            return True
        if status.startswith("2"):
            schemas = [media.get("schema") for media in (response.get("content") or {}).values()]
            if schemas and all(_describes(schema) for schema in schemas):
                return True
    return False


def _describes(schema: dict[str, Any] | None) -> bool:
    """A schema that says something: not `{}` and not a bare `{"type": "object"}` (`dict[str, Any]`)."""
    if not schema:
        return False
    bare = {k: v for k, v in schema.items() if k not in ("title", "description")}
    return bare not in ({"type": "object"}, {"type": "object", "additionalProperties": True})


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolves(spec: dict[str, Any], ref: str) -> bool:
    if not ref.startswith("#/"):
        return False
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def openapi_problems(spec: dict[str, Any], *, system_paths: tuple[str, ...] = ()) -> list[str]:
    """Each operation without a success schema or without the common errors; each dangling $ref."""
    problems = []
    for name, operation in operations(spec):
        if not name.startswith("HEAD ") and not _has_success_schema(operation):  # HEAD sends no body
            problems.append(f"{name}: no 2xx response with a schema")
        if name.split(" ", 1)[1] not in system_paths:
            missing = [s for s in REQUIRED_ERRORS if s not in operation.get("responses", {})]
            if missing:
                problems.append(f"{name}: error statuses not documented: {', '.join(missing)}")
    problems += [f"unresolved $ref {ref}" for ref in sorted(set(_refs(spec))) if not _resolves(spec, ref)]
    return problems
