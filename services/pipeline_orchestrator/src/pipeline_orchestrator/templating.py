"""Resolve ``{{ params.x }}``, ``{{ tasks.t.outputs.k }}`` and ``{{ run.id }}`` in a task's fields.

A string that is exactly one reference takes the referenced value with its JSON type (a number
stays a number, a dict a dict); a reference inside a longer string is formatted into it (JSON for
lists and dicts).
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline_orchestrator.spec import REFERENCE, parse_reference


class MissingReference(LookupError):
    """A reference that names something the run does not have (e.g. an output never produced)."""


def lookup(parts: tuple[str, ...], scope: dict[str, Any]) -> Any:
    if parts[0] == "tasks":
        task = parts[1]
        outputs = scope.get("tasks", {}).get(task)
        if outputs is None:
            raise MissingReference(f"task {task!r} has no outputs (it did not succeed)")
        value: Any = outputs
        walked = f"tasks.{task}.outputs"
        for key in parts[3:]:
            walked += f".{key}"
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                have = sorted(value) if isinstance(value, dict) else type(value).__name__
                raise MissingReference(f"{{{{ {walked} }}}} does not exist; {task!r} produced {have}")
        return value
    if parts[0] == "params":
        params = scope.get("params", {})
        if parts[1] not in params:
            raise MissingReference(f"unknown parameter {parts[1]!r}")
        value = params[parts[1]]
        for key in parts[2:]:
            if not isinstance(value, dict) or key not in value:
                raise MissingReference(f"{{{{ {'.'.join(parts)} }}}} does not exist")
            value = value[key]
        return value
    return scope.get("run", {}).get(parts[1])


def _format(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def render(value: Any, scope: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value.strip()) if "{{" in value else None
        if whole is not None and value.strip() == whole.group(0):
            return lookup(parse_reference(whole.group(1)), scope)
        if "{{" not in value:
            return value
        return REFERENCE.sub(lambda m: _format(lookup(parse_reference(m.group(1)), scope)), value)
    if isinstance(value, dict):
        return {k: render(v, scope) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, scope) for v in value]
    return value
