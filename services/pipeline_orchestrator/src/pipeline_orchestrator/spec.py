"""The pipeline definition: parameters, tasks, dependencies; validated as a DAG before anything is stored.

A task's fields may reference pipeline parameters, upstream outputs and the run itself with
``{{ params.lr }}``, ``{{ tasks.train.outputs.model_uri }}`` and ``{{ run.id }}``. References are
checked here, at definition time: an unknown parameter, an unknown task, or a task that is not
upstream of the one referencing it is refused with the task and field named.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal
from zoneinfo import ZoneInfo

import networkx as nx
import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipeline_orchestrator.errors import (
    DuplicateParameter,
    DuplicateTask,
    InvalidReference,
    MissingParameter,
    ParameterTypeError,
    ReferenceInCode,
    ReferenceNotUpstream,
    TaskCycle,
    UnknownDependency,
    UnknownParameter,
    UnknownParameterReference,
    UnknownTaskReference,
)
from pipeline_orchestrator.errors import PipelineDefinitionError as PipelineDefinitionError

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"
CALLABLE_PATTERN = (
    r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
)
ParamType = Literal["int", "float", "string", "bool", "list", "dict"]
TaskKind = Literal["python", "shell", "http", "platform", "hpo"]
TriggerRule = Literal["all_success", "all_done", "one_failed", "none_failed"]
PlatformStep = Literal["log_to_tracking", "register_model", "fetch_training_data", "start_canary"]

# {{ expr }} with an optional filter-free dotted path; whitespace inside the braces is free
REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
RUN_FIELDS = {"id", "pipeline", "pipeline_version", "logical_date", "trigger"}
# programs whose ``-c`` argument is shell code (a list command running one gets its script
# rendered like a string command) and interpreters whose code argument may hold no reference
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"})
INTERPRETER = re.compile(r"(python[0-9.]*|pypy[0-9.]*|perl|ruby|node|nodejs|php|lua|Rscript)")


class ParameterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: ParamType = "string"
    default: Any = None
    required: bool | None = Field(default=None, description="defaults to true when there is no default")
    description: str = ""

    @model_validator(mode="after")
    def _check_default(self) -> ParameterSpec:
        if self.required is None:
            self.required = self.default is None
        if self.default is not None:
            self.default = coerce_parameter(self.name, self.type, self.default)
        return self


class SearchDimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchDimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty 'choices' list")
        else:
            if self.low is None or self.high is None:
                raise ValueError(f"an {self.type} dimension needs 'low' and 'high'")
            if self.low > self.high:
                raise ValueError(f"'low' ({self.low}) is greater than 'high' ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log-scaled dimension needs 'low' > 0")
        return self


class TaskSpec(BaseModel):
    """One node of the DAG. Which fields apply depends on ``kind``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    kind: TaskKind
    description: str = ""
    depends_on: list[str] = Field(default_factory=list)
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments (python, hpo) or step inputs (platform)"
    )
    # python / hpo
    callable: str | None = Field(
        default=None, pattern=CALLABLE_PATTERN, description="package.module:function"
    )
    # shell
    command: str | list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    # http
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(default=None, description="http: sent as JSON")
    expect_status: list[int] | None = Field(default=None, description="http: accepted statuses (default 2xx)")
    # platform
    step: PlatformStep | None = None
    # hpo
    search_space: dict[str, SearchDimension] | None = None
    n_trials: int = Field(default=20, ge=1, le=10_000)
    parallelism: int = Field(default=4, ge=1, le=256)
    direction: Literal["maximize", "minimize"] = "maximize"
    metric: str = Field(default="score", description="hpo: the objective's metric to optimise")
    seed: int | None = None
    experiment: str | None = Field(default=None, description="hpo: tracking experiment for the trials")
    # policies
    retries: int = Field(default=0, ge=0, le=100)
    retry_delay_seconds: float = Field(default=1.0, ge=0, le=86_400)
    retry_backoff: float = Field(default=2.0, ge=1, le=10)
    max_retry_delay_seconds: float = Field(default=600.0, ge=0, le=86_400)
    timeout_seconds: float | None = Field(default=None, gt=0, le=7 * 86_400)
    trigger_rule: TriggerRule = "all_success"
    cache: bool | None = Field(
        default=None,
        description="reuse outputs of an identical earlier attempt; default on except http/platform",
    )
    resources: dict[str, Any] = Field(default_factory=dict, description="cpu (cores), memory ('512Mi'), gpu")

    @field_validator("resources")
    @classmethod
    def _check_resources(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - {"cpu", "memory", "gpu"}
        if unknown:
            raise ValueError(f"unknown resources {sorted(unknown)}; use cpu, memory, gpu")
        cpu = value.get("cpu")
        if cpu is not None and (isinstance(cpu, bool) or not isinstance(cpu, int | float) or cpu <= 0):
            raise ValueError("resources.cpu must be a positive number of cores")
        memory = value.get("memory")
        if memory is not None and not re.fullmatch(r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?", str(memory)):
            raise ValueError("resources.memory must look like '512Mi' or '2Gi'")
        return value

    @field_validator("metric", "description")
    @classmethod
    def _no_references(cls, value: str) -> str:
        if "{{" in value:
            raise ValueError("references ({{ ... }}) are not resolved in this field")
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> TaskSpec:
        need = {
            "python": ("callable",),
            "hpo": ("callable", "search_space"),
            "shell": ("command",),
            "http": ("url",),
            "platform": ("step",),
        }[self.kind]
        missing = [f for f in need if getattr(self, f) in (None, "", [], {})]
        if missing:
            raise ValueError(f"a {self.kind} task needs {', '.join(missing)}")
        if self.kind == "hpo" and self.parallelism > self.n_trials:
            self.parallelism = self.n_trials
        return self

    @property
    def cache_enabled(self) -> bool:
        if self.cache is not None:
            return self.cache
        return self.kind in ("python", "shell", "hpo")

    @property
    def cpu_slots(self) -> int:
        cpu = self.resources.get("cpu")
        return max(1, int(-(-float(cpu) // 1))) if cpu else 1

    def templated(self) -> dict[str, Any]:
        """The fields that may hold references, by name."""
        fields = ("inputs", "command", "env", "url", "headers", "body", "experiment")
        return {f: getattr(self, f) for f in fields}


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    parameters: list[ParameterSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=10_000)
    max_active_runs: int = Field(default=16, ge=1, le=10_000)
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("parameters", mode="before")
    @classmethod
    def _parameters_as_mapping(cls, value: Any) -> Any:
        # {"lr": {"type": "float", "default": 0.1}} is accepted as well as a list
        if isinstance(value, dict):
            return [{"name": k, **(v if isinstance(v, dict) else {"default": v})} for k, v in value.items()]
        return value

    def task(self, name: str) -> TaskSpec:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)

    def content_hash(self) -> str:
        body = self.model_dump(mode="json", exclude={"name"})
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def build_graph(spec: PipelineSpec) -> nx.DiGraph:
    """The DAG (edges upstream -> downstream); refuses duplicates, unknown dependencies, cycles."""
    graph: nx.DiGraph = nx.DiGraph()
    for task in spec.tasks:
        if task.name in graph:
            raise DuplicateTask(f"duplicate task name {task.name!r}", {"task": task.name})
        graph.add_node(task.name)
    for task in spec.tasks:
        for dep in task.depends_on:
            if dep not in graph:
                raise UnknownDependency(
                    f"task {task.name!r} depends on unknown task {dep!r}",
                    {"task": task.name, "dependency": dep},
                )
            if dep == task.name:
                raise TaskCycle(f"task {task.name!r} depends on itself", {"task": task.name})
            graph.add_edge(dep, task.name)
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return graph
    path = [edge[0] for edge in cycle] + [cycle[0][0]]
    raise TaskCycle(f"the tasks form a cycle: {' -> '.join(path)}", {"cycle": path})


def iter_references(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every ``{{ expr }}`` in a JSON-like value, with the field path it was found at."""
    found: list[tuple[str, str]] = []
    if isinstance(value, str):
        found.extend((path, m.group(1)) for m in REFERENCE.finditer(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(iter_references(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(iter_references(item, f"{path}[{i}]"))
    return found


def parse_reference(expr: str) -> tuple[str, ...]:
    """``tasks.train.outputs.model_uri`` -> ("tasks", "train", "outputs", "model_uri")."""
    parts = tuple(expr.split("."))
    if not all(parts) or not parts:
        raise ValueError(f"malformed reference {{{{ {expr} }}}}")
    head = parts[0]
    if head == "params":
        if len(parts) < 2:
            raise ValueError("a parameter reference looks like {{ params.<name> }}")
    elif head == "tasks":
        if len(parts) < 4 or parts[2] != "outputs":
            raise ValueError("a task reference looks like {{ tasks.<task>.outputs.<key> }}")
    elif head == "run":
        if len(parts) != 2 or parts[1] not in RUN_FIELDS:
            raise ValueError(f"a run reference is one of {{{{ run.{'|'.join(sorted(RUN_FIELDS))} }}}}")
    else:
        raise ValueError(f"unknown reference {{{{ {expr} }}}}: use params., tasks.<name>.outputs. or run.")
    return parts


def _program_index(argv: list[str], accepts: Callable[[str], object]) -> int | None:
    """The first element naming a program ``accepts`` likes: wrappers (env, timeout, busybox,
    nice, ...) may come before it."""
    for i, arg in enumerate(argv):
        if accepts(PurePosixPath(str(arg)).name):
            return i
    return None


def shell_script_index(argv: list[str]) -> int | None:
    """In a list command that runs a shell (``["bash", "-ec", "..."]``), the index of its script."""
    start = _program_index(argv, SHELLS.__contains__)
    if start is None:
        return None
    i = start + 1
    while i < len(argv) - 1:
        arg = str(argv[i])
        if arg in ("-o", "+o"):
            i += 2
            continue
        if not arg.startswith("-") or arg == "--":
            return None
        if not arg.startswith("--") and "c" in arg:
            return i + 1
        i += 1
    return None


def _check_code_arguments(task: TaskSpec) -> None:
    """A reference in the code an interpreter runs (``python -c``) would make data code: refused."""
    argv = task.command if isinstance(task.command, list) else []
    start = _program_index(argv, INTERPRETER.fullmatch)
    if start is None:
        return
    for i in range(start + 1, len(argv) - 1):
        if argv[i] in ("-c", "-e", "-E", "--eval", "-r") and "{{" in argv[i + 1]:
            raise ReferenceInCode(
                f"task {task.name!r}: a reference in the code of {argv[start]} {argv[i]} would run data "
                "as code; pass the value as an argument after the code (sys.argv) or through 'env'",
                {"task": task.name, "field": f"command[{i + 1}]"},
            )


def validate_pipeline(spec: PipelineSpec) -> nx.DiGraph:
    """Everything that can be checked before a run: the DAG and every reference in every task."""
    graph = build_graph(spec)
    params = {p.name for p in spec.parameters}
    seen: set[str] = set()
    for p in spec.parameters:
        if p.name in seen:
            raise DuplicateParameter(f"duplicate parameter {p.name!r}", {"parameter": p.name})
        seen.add(p.name)
    for task in spec.tasks:
        _check_code_arguments(task)
        ancestors = nx.ancestors(graph, task.name)
        for field_path, expr in iter_references(task.templated()):
            where = {"task": task.name, "field": field_path, "reference": expr}
            try:
                parts = parse_reference(expr)
            except ValueError as exc:
                raise InvalidReference(f"task {task.name!r}, field {field_path!r}: {exc}", where) from None
            if parts[0] == "params" and parts[1] not in params:
                raise UnknownParameterReference(
                    f"task {task.name!r}, field {field_path!r} references unknown parameter {parts[1]!r}",
                    where,
                )
            if parts[0] == "tasks":
                upstream = parts[1]
                if upstream not in graph:
                    raise UnknownTaskReference(
                        f"task {task.name!r}, field {field_path!r} references unknown task {upstream!r}",
                        where,
                    )
                if upstream not in ancestors:
                    raise ReferenceNotUpstream(
                        f"task {task.name!r}, field {field_path!r} uses the outputs of {upstream!r}, "
                        f"which is not upstream of it; add it to depends_on",
                        where,
                    )
    return graph


def coerce_parameter(name: str, type_: str, value: Any) -> Any:
    """A parameter value of the declared type, or a 422 naming the parameter."""
    ok: bool
    if type_ == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
    elif type_ == "float":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif type_ == "string":
        ok = isinstance(value, str)
    elif type_ == "bool":
        ok = isinstance(value, bool)
    elif type_ == "list":
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, dict)
    if not ok:
        raise ParameterTypeError(
            f"parameter {name!r} must be of type {type_}, got {type(value).__name__} {value!r}"[:300],
            {"parameter": name, "expected": type_},
        )
    return value


def check_known_parameters(spec: PipelineSpec, given: dict[str, Any]) -> None:
    """A 422 naming the parameters the pipeline does not declare."""
    declared = [p.name for p in spec.parameters]
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UnknownParameter(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; pipeline {spec.name!r} declares "
            f"{', '.join(map(repr, declared)) or 'none'}",
            {"unknown": unknown, "declared": list(declared)},
        )


def logical_date_parameters(spec: PipelineSpec, logical_date: datetime, tz: str) -> dict[str, str]:
    """What a run with a logical date (schedule, backfill) gives the string parameters it declares
    under these names: ``logical_date`` (ISO 8601, UTC) and ``ds`` (its day in the schedule's
    timezone, YYYY-MM-DD), as Airflow users expect."""
    values = {
        "logical_date": logical_date.astimezone(UTC).isoformat(),
        "ds": logical_date.astimezone(ZoneInfo(tz)).date().isoformat(),
    }
    return {p.name: values[p.name] for p in spec.parameters if p.name in values and p.type == "string"}


def resolve_parameters(spec: PipelineSpec, given: dict[str, Any] | None) -> dict[str, Any]:
    """Given values checked against the declaration, defaults filled in."""
    given = given or {}
    check_known_parameters(spec, given)
    declared = {p.name: p for p in spec.parameters}
    values: dict[str, Any] = {}
    for name, p in declared.items():
        if name in given and given[name] is not None:
            values[name] = coerce_parameter(name, p.type, given[name])
        elif p.default is not None:
            values[name] = p.default
        elif p.required:
            raise MissingParameter(f"parameter {name!r} is required", {"parameter": name})
        else:
            values[name] = None
    return values
