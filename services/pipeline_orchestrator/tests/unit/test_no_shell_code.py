"""The class guard: no source in services/ or libs/ hands a shell a script built from data.

ruff's S602/S604/S605/S606/S102/S307 (pyproject) refuse ``shell=True``, ``os.system``,
``os.popen``, ``exec`` and ``eval``; this test refuses the form ruff does not see: an argv list
that runs ``sh -c`` (or bash, ...) with a script that is not a literal. The shell task runner is
the one place allowed, and only because its script is rendered by ``templating.shell_script``.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/usr/bin/env"}
ALLOWED = {"services/pipeline_orchestrator/src/pipeline_orchestrator/worker/kind_shell.py"}


def _shell_with_data(node: ast.List) -> bool:
    items = node.elts
    if len(items) < 3 or not isinstance(items[0], ast.Constant) or items[0].value not in SHELLS:
        return False
    for flag, script in itertools.pairwise(items):
        if isinstance(flag, ast.Constant) and str(flag.value).startswith("-") and "c" in str(flag.value):
            return not isinstance(script, ast.Constant)
    return False


def test_no_source_runs_a_shell_script_built_from_data() -> None:
    offenders = []
    for path in [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]:
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(), relative)):
            if isinstance(node, ast.List) and _shell_with_data(node) and relative not in ALLOWED:
                offenders.append(f"{relative}:{node.lineno}")
    assert not offenders, f"a shell script built from data (pass values as env or argv): {offenders}"


def test_the_guard_sees_a_shell_script_built_from_data() -> None:
    bad = ast.parse('run(["sh", "-c", f"echo {value}"])').body[0]
    good = ast.parse('run(["sh", "-c", "echo \\"$V\\""])').body[0]
    lists = [n for tree in (bad, good) for n in ast.walk(tree) if isinstance(n, ast.List)]
    assert [_shell_with_data(n) for n in lists] == [True, False]
