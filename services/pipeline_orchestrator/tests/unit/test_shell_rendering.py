"""How references reach a shell command (as quoted variables), an interpreter (refused) and a URL."""

from __future__ import annotations

import subprocess

import pytest
from pipeline_orchestrator.spec import PipelineDefinitionError, PipelineSpec, TaskSpec, validate_pipeline
from pipeline_orchestrator.templating import UnusableValue, render_task, render_url, shell_script

HOSTILE = "$(echo X) `echo Y` ; echo Z | cat\n' \" \\ ${HOME} *"
SCOPE = {"params": {"v": HOSTILE, "n": 3}, "tasks": {"up": {"k": HOSTILE}}, "run": {"id": "r-1"}}


def _run(script: str, env: dict[str, str]) -> str:
    return subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("printf %s {{ params.v }}", HOSTILE),
        ('printf %s "{{ params.v }}"', HOSTILE),
        ("printf %s '{{ params.v }}'", HOSTILE),
        ('printf %s "<{{ params.v }}>"', f"<{HOSTILE}>"),
        ("printf %s '<{{ params.v }}>'", f"<{HOSTILE}>"),
        ("printf %s x\\'{{ params.v }}", f"x'{HOSTILE}"),
        ("printf %s '{{params.v}}' # {{ params.n }}", HOSTILE),
        ("printf %s {{ tasks.up.outputs.k }}", HOSTILE),
    ],
)
def test_a_reference_arrives_verbatim_whatever_quotes_surround_it(template: str, expected: str) -> None:
    env: dict[str, str] = {}
    script = shell_script(template, SCOPE, env)
    assert HOSTILE not in script and "$(echo" not in script
    assert _run(script, env) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("echo $(( {{ params.n }} + 1 ))", "4\n"),
        ('echo "$(( ({{ params.n }}) * (2) ))"', "6\n"),
        ("echo $(( (1) )) {{ params.v }}", f"1 {HOSTILE}\n"),
    ],
)
def test_numbers_work_in_arithmetic_and_nothing_else_gets_there(template: str, expected: str) -> None:
    env: dict[str, str] = {}
    assert _run(shell_script(template, SCOPE, env), env) == expected
    with pytest.raises(UnusableValue, match="not a number"):
        shell_script("echo $(( {{ params.v }} ))", SCOPE, {})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("cat <<EOF\n{{ params.v }}\nEOF", f"{HOSTILE}\n"),
        ("cat <<-END\n\t<{{ params.v }}>\n\tEND\necho after {{ params.n }}", f"<{HOSTILE}>\nafter 3\n"),
        ("cat <<A; cat << B\n1\nA\n{{ params.n }}\nB\nprintf %s '{{ params.v }}'", f"1\n3\n{HOSTILE}"),
    ],
)
def test_here_documents_take_the_value_as_text(template: str, expected: str) -> None:
    env: dict[str, str] = {}
    assert _run(shell_script(template, SCOPE, env), env) == expected
    breakout = {"params": {"v": "x\nEOF\necho INJECTED"}}
    env = {}
    assert (
        _run(shell_script("cat <<EOF\n{{ params.v }}\nEOF", breakout, env), env) == "x\nEOF\necho INJECTED\n"
    )
    with pytest.raises(UnusableValue, match="quoted delimiter"):
        shell_script("cat <<'EOF'\n{{ params.v }}\nEOF", SCOPE, {})


def test_the_same_reference_shares_a_variable_and_values_are_formatted() -> None:
    env: dict[str, str] = {}
    script = shell_script("echo {{ params.n }} {{params.n}} {{ run.id }}", SCOPE, env)
    assert env == {"MLOPS_REF_params_n": "3", "MLOPS_REF_run_id": "r-1"}
    assert script == 'echo "${MLOPS_REF_params_n}" "${MLOPS_REF_params_n}" "${MLOPS_REF_run_id}"'


def test_shell_tasks_get_values_in_env_and_list_commands_stay_argv() -> None:
    task = TaskSpec(name="t", kind="shell", command="echo {{ params.v }}", env={"A": "{{ params.n }}"})
    resolved = render_task(task, SCOPE)
    assert resolved["command"] == 'echo "${MLOPS_REF_params_v}"'
    assert resolved["env"] == {"A": "3", "MLOPS_REF_params_v": HOSTILE}, "env values are text (JSON)"
    argv = TaskSpec(name="t", kind="shell", command=["printf", "%s", "{{ params.v }}", "{{ params.n }}"])
    assert render_task(argv, SCOPE)["command"] == ["printf", "%s", HOSTILE, "3"]
    bash = ["bash", "-o", "pipefail", "-ec", "echo {{ params.v }}"]
    script = TaskSpec(name="t", kind="shell", command=bash)
    assert render_task(script, SCOPE)["command"][-1] == 'echo "${MLOPS_REF_params_v}"'
    wrapped = TaskSpec(
        name="t", kind="shell", command=["env", "A=1", "busybox", "sh", "-c", "echo {{ params.v }}"]
    )
    assert render_task(wrapped, SCOPE)["command"][-1] == 'echo "${MLOPS_REF_params_v}"'


def test_a_value_with_a_nul_byte_cannot_reach_the_shell() -> None:
    with pytest.raises(UnusableValue, match="NUL"):
        shell_script("echo {{ params.v }}", {"params": {"v": "a\x00b"}}, {})
    in_env = TaskSpec(name="t", kind="shell", command="true", env={"A": "{{ params.v }}"})
    with pytest.raises(UnusableValue, match="'A' holds a NUL"):
        render_task(in_env, {"params": {"v": "a\x00b"}})


def test_a_reference_in_an_interpreters_code_argument_is_refused() -> None:
    def define(command: list[str]) -> None:
        spec = PipelineSpec(
            name="p",
            parameters=[{"name": "v"}],  # type: ignore[list-item]
            tasks=[TaskSpec(name="t", kind="shell", command=command)],
        )
        validate_pipeline(spec)

    with pytest.raises(PipelineDefinitionError) as err:
        define(["python3", "-c", "print('{{ params.v }}')"])
    assert err.value.code == "REFERENCE_IN_CODE"
    with pytest.raises(PipelineDefinitionError):
        define(["timeout", "9", "/usr/bin/python3.11", "-c", "print({{ params.v }})"])
    define(["python3", "-c", "import sys; print(sys.argv[1])", "{{ params.v }}"])
    define(["grep", "-c", "{{ params.v }}", "file"])


def test_url_references_after_the_host_are_percent_encoded() -> None:
    scope = {"params": {"base": "http://h:1", "p": "../a?b=1#c d"}}
    assert render_url("{{ params.base }}/x/{{ params.p }}", scope) == "http://h:1/x/..%2Fa%3Fb%3D1%23c%20d"
    assert render_url("http://{{ params.p }}/x", {"params": {"p": "h:1"}}) == "http://h:1/x"
    assert render_url("{{ params.base }}", scope) == "http://h:1"
