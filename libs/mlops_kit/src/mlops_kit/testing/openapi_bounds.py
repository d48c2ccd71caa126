"""The CI check that keeps unbounded input out: every string a client sends (body, path, query,
header) has a maxLength, every array a maxItems, every map a maxProperties, every integer a
minimum and maximum inside BIGINT. And the list of paginated operations, for the offset tests."""

from __future__ import annotations

from typing import Any

from mlops_kit.bounds import INT64_MAX, INT64_MIN

# formats whose value is parsed into something bounded (or is a file), not stored as text
UNSTORED_FORMATS = frozenset({"binary", "date-time", "date", "time", "duration", "uuid"})


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    name = node["$ref"].rsplit("/", 1)[-1]
    return name, spec.get("components", {}).get("schemas", {}).get(name)


def _own_problems(node: dict[str, Any]) -> list[str]:
    kind = node.get("type")
    bounded_text = {"maxLength", "enum", "const"} & node.keys() or node.get("format") in UNSTORED_FORMATS
    if kind == "string" and not bounded_text:
        return ["string without maxLength"]
    if kind == "array" and "maxItems" not in node:
        return ["array without maxItems"]
    is_map = node.get("additionalProperties") not in (None, False)
    if kind == "object" and is_map and "maxProperties" not in node:
        return ["map without maxProperties"]
    if kind == "integer":
        low, high = node.get("minimum", node.get("exclusiveMinimum")), node.get("maximum")
        if low is None or high is None or low < INT64_MIN or high > INT64_MAX:
            return ["integer without a minimum and maximum inside BIGINT"]
    return []


def _children(node: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [(f".{k}", v) for k, v in (node.get("properties") or {}).items()]
    for key in ("items", "additionalProperties", "propertyNames"):
        if isinstance(node.get(key), dict):
            out.append((f"[{key}]", node[key]))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        out.extend(("", child) for child in node.get(key) or [])
    return out


def schema_problems(
    spec: dict[str, Any], node: Any, where: str, seen: frozenset[str] = frozenset()
) -> list[str]:
    if not isinstance(node, dict):
        return []
    if "$ref" in node:
        name, target = _resolve(spec, node)
        if target is None or name in seen:
            return []
        return schema_problems(spec, target, f"{where}<{name}>", seen | {name})
    problems = [f"{where}: {p}" for p in _own_problems(node)]
    for suffix, child in _children(node):
        problems += schema_problems(spec, child, where + suffix, seen)
    return problems


def request_problems(spec: dict[str, Any]) -> list[str]:
    """Every unbounded string, array, map or integer a client can send: in a body, the path,
    the query or a header."""
    problems: list[str] = []
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            for media in ((op.get("requestBody") or {}).get("content") or {}).values():
                problems += schema_problems(spec, media.get("schema", {}), f"{where} body")
            for param in op.get("parameters", []):
                name = f"{where} {param['in']}:{param['name']}"
                problems += schema_problems(spec, param.get("schema", {}), name)
    return problems


def paginated_operations(spec: dict[str, Any]) -> list[tuple[str, list[str], set[str]]]:
    """(path template, its path parameter names, its query parameter names) of every GET that
    takes an `offset`."""
    found = []
    for path, operations in spec.get("paths", {}).items():
        params = (operations.get("get") or {}).get("parameters", [])
        query = {p["name"] for p in params if p["in"] == "query"}
        if "offset" in query:
            found.append((path, [p["name"] for p in params if p["in"] == "path"], query))
    return found


# (query parameter, value) a paginated GET must refuse with a 4xx: past BIGINT, negative, huge pages
OUT_OF_RANGE = [
    ("offset", str(2**63)),
    ("offset", str(2**63 - 1)),
    ("offset", str(-(2**63) - 1)),
    ("offset", "-1"),
    ("offset", "1e20"),
    ("limit", str(2**63)),
    ("limit", str(10**30)),
    ("limit", "-1"),
]


def offset_failures(client: Any, spec: dict[str, Any], path_values: dict[str, str]) -> list[str]:
    """Call every paginated GET (path parameters from `path_values`) with each out-of-range value,
    and with the largest offset allowed; what answered a 5xx, or accepted the out-of-range value."""
    from mlops_kit.bounds import MAX_OFFSET

    failures = []
    for template, names, query in paginated_operations(spec):
        path = template.format(**{n: path_values[n] for n in names})
        for name, value in [(n, v) for n, v in OUT_OF_RANGE if n in query]:
            status = client.get(path, params={name: value}).status_code
            if not 400 <= status < 500:
                failures.append(f"GET {path}?{name}={value}: {status}")
        status = client.get(path, params={"offset": MAX_OFFSET}).status_code
        if status != 200:
            failures.append(f"GET {path}?offset={MAX_OFFSET} (the largest allowed): {status}")
    return failures
