"""Resolve ``{{ params.x }}``, ``{{ tasks.t.outputs.k }}`` and ``{{ run.id }}`` in a task's fields.

A string that is exactly one reference takes the referenced value with its JSON type (a number
stays a number, a dict a dict); a reference inside a longer string is formatted into it (JSON for
lists and dicts).

Data never becomes code (``render_task``): in a ``shell`` task's command the value of a
reference is never written into the script. Each reference becomes a quoted expansion of an
environment variable (``"${MLOPS_REF_params_x}"``) and the value travels in that variable, so
``$(...)``, backticks, ``;``, ``|``, quotes and newlines in parameters, alert labels, webhook
payloads or upstream outputs stay text. In an ``http`` task's URL a reference after the host is
percent-encoded.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson

from pipeline_orchestrator.spec import REFERENCE, TaskSpec, parse_reference, shell_script_index

ENV_PREFIX = "MLOPS_REF_"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class MissingReference(LookupError):
    """A reference that names something the run does not have (e.g. an output never produced)."""


class UnusableValue(MissingReference):
    """A value the task cannot be given (a NUL byte in an environment variable)."""


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


def render_task(task: TaskSpec, scope: dict[str, Any]) -> dict[str, Any]:
    """``task.templated()`` resolved; shell commands and http URLs keep data out of code."""
    resolved: dict[str, Any] = render(task.templated(), scope)
    if task.kind == "shell":
        env = {
            name: _env_value(f"env {name!r}", value) for name, value in (resolved.get("env") or {}).items()
        }
        resolved["command"] = _shell_command(task.command, scope, env)
        resolved["env"] = env
    elif task.kind == "http" and task.url is not None:
        resolved["url"] = render_url(task.url, scope)
    return resolved


def _shell_command(command: str | list[str] | None, scope: dict[str, Any], env: dict[str, str]) -> Any:
    if isinstance(command, str):
        return shell_script(command, scope, env)
    if not command:
        return command
    script = shell_script_index(command)
    return [
        shell_script(part, scope, env) if i == script else _format(render(part, scope))
        for i, part in enumerate(command)
    ]


def shell_script(template: str, scope: dict[str, Any], env: dict[str, str]) -> str:
    """``template`` with every reference replaced by a quoted ``${MLOPS_REF_...}`` expansion whose
    value is added to ``env``; the quoting fits where the reference stands (outside quotes, in
    double quotes, in single quotes, in a here-document), and an expansion is never parsed again
    as shell code. Inside ``$(( ))`` the value must be a number: bash evaluates a variable's
    text there."""
    out: list[str] = []
    pos, scan = 0, _Scan()
    for match in REFERENCE.finditer(template):
        scan.feed(template[pos : match.start()])
        out.append(template[pos : match.start()])
        if scan.heredoc is not None and scan.heredoc[1]:
            raise UnusableValue(
                f"{{{{ {match.group(1)} }}}} stands in a here-document with a quoted delimiter, where "
                "nothing is expanded; unquote the delimiter"
            )
        name = _bind(match.group(1), scope, env, numeric=scan.arithmetic > 0)
        out.append(_expansion(name, scan))
        pos = match.end()
    out.append(template[pos:])
    return "".join(out)


def _expansion(name: str, scan: _Scan) -> str:
    if scan.heredoc is not None or (scan.arithmetic and scan.quote != "'"):
        return f"${{{name}}}"
    return {"": f'"${{{name}}}"', '"': f"${{{name}}}", "'": f"'\"${{{name}}}\"'"}[scan.quote]


class _Scan:
    """Where the text fed so far leaves the shell: the quoting ("" none, "'" or '"'), the
    ``$(( ))`` parenthesis depth, and the here-document being read (delimiter, quoted, tabs)."""

    def __init__(self) -> None:
        self.quote, self.arithmetic = "", 0
        self.heredoc: tuple[str, bool, bool] | None = None
        self.pending: list[tuple[str, bool, bool]] = []
        self.line = ""

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.heredoc is not None:
                i = self._body(text, i)
            elif self.quote != "'" and text[i] == "\\":
                i += 2
            elif self.quote == "" and not self.arithmetic and text.startswith("<<", i):
                i = self._redirect(text, i)
            else:
                self._char(text, i)
                i += 3 if self.quote != "'" and text.startswith("$((", i) else 1

    def _char(self, text: str, i: int) -> None:
        char = text[i]
        if self.quote == "" and char in "'\"" and not self.arithmetic:
            self.quote = char
        elif char == self.quote:
            self.quote = ""
        elif self.quote != "'" and text.startswith("$((", i):
            self.arithmetic += 2
        elif self.arithmetic and char in "()":
            self.arithmetic += 1 if char == "(" else -1
        elif char == "\n" and self.quote == "" and self.pending:
            self.heredoc, self.line = self.pending.pop(0), ""

    def _redirect(self, text: str, i: int) -> int:
        """``<<[-] word``: a here-document starts at the next line."""
        if text.startswith("<<<", i):
            return i + 3
        match = re.compile(r"<<(-?)[ \t]*([^\s;|&<>()]+)").match(text, i)
        if match is None:
            return i + 2
        word = match.group(2)
        quoted = any(c in word for c in "'\"\\")
        self.pending.append((re.sub(r"['\"\\]", "", word), quoted, bool(match.group(1))))
        return match.end()

    def _body(self, text: str, i: int) -> int:
        assert self.heredoc is not None
        end = text.find("\n", i)
        if end < 0:
            self.line += text[i:]
            return len(text)
        line = self.line + text[i:end]
        delimiter, _, tabs = self.heredoc
        if (line.lstrip("\t") if tabs else line) == delimiter:
            self.heredoc = self.pending.pop(0) if self.pending else None
        self.line = ""
        return end + 1


def _env_value(what: str, value: Any) -> str:
    text = _format(value)
    if "\x00" in text:
        raise UnusableValue(f"{what} holds a NUL byte, which an environment variable cannot")
    return text


def _bind(expr: str, scope: dict[str, Any], env: dict[str, str], *, numeric: bool = False) -> str:
    """The variable that carries ``{{ expr }}``'s value (the same expression, the same variable)."""
    parts = parse_reference(expr)
    value = _env_value(f"{{{{ {expr} }}}}", lookup(parts, scope))
    if numeric and not _NUMBER.fullmatch(value):
        raise UnusableValue(
            f"{{{{ {expr} }}}} is used in $(( )) arithmetic but is not a number: {value[:80]!r}"
        )
    base = ENV_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))
    name, n = base, 1
    while name in env and env[name] != value:
        n += 1
        name = f"{base}_{n}"
    env[name] = value
    return name


def render_url(template: str, scope: dict[str, Any]) -> Any:
    """References up to the host are inserted as they are (a base URL may come from a
    parameter); those in the path, query or fragment are percent-encoded, so a value cannot add
    path segments or query parameters."""
    if "{{" not in template:
        return template
    whole = REFERENCE.fullmatch(template.strip())
    if whole is not None:
        return lookup(parse_reference(whole.group(1)), scope)
    scheme = template.find("://")
    host_end = re.search(r"[/?#]", template[scheme + 3 if scheme >= 0 else 0 :])
    split = len(template) if host_end is None else host_end.start() + (scheme + 3 if scheme >= 0 else 0)

    def one(match: re.Match[str]) -> str:
        text = _format(lookup(parse_reference(match.group(1)), scope))
        return text if match.start() < split else quote(text, safe="")

    return REFERENCE.sub(one, template)
