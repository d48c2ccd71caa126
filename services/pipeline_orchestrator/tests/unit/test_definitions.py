"""Pipeline definitions: DAG validation, references, parameters, templating, trigger rules, cron."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from mlops_kit.errors import Unprocessable
from pipeline_orchestrator.engine.cron import check_cron, fires_between, next_fire, zone
from pipeline_orchestrator.engine.rules import cache_key, decide, retry_delay
from pipeline_orchestrator.spec import PipelineSpec, TaskSpec, resolve_parameters, validate_pipeline
from pipeline_orchestrator.templating import MissingReference, render


def spec(tasks: list[dict], **extra: object) -> PipelineSpec:
    return PipelineSpec.model_validate({"name": "p", "tasks": tasks, **extra})


def sh(name: str, deps: list[str] | None = None, command: str = "true") -> dict:
    return {"name": name, "kind": "shell", "command": command, "depends_on": deps or []}


def code_of(s: PipelineSpec) -> tuple[str, str]:
    with pytest.raises(Unprocessable) as err:
        validate_pipeline(s)
    return err.value.code, err.value.message


def test_a_cycle_is_refused_with_its_path() -> None:
    code, message = code_of(spec([sh("a", ["c"]), sh("b", ["a"]), sh("c", ["b"])]))
    assert code == "CYCLE"
    assert "a" in message and "b" in message and "c" in message and "->" in message


def test_unknown_dependency_and_duplicates_and_self_loops_are_named() -> None:
    assert code_of(spec([sh("a", ["ghost"])])) == (
        "UNKNOWN_DEPENDENCY",
        "task 'a' depends on unknown task 'ghost'",
    )
    assert code_of(spec([sh("a"), sh("a")]))[0] == "DUPLICATE_TASK"
    assert code_of(spec([sh("a", ["a"])]))[0] == "CYCLE"


def test_references_must_name_declared_parameters_and_upstream_tasks() -> None:
    ok = spec(
        [sh("a"), sh("b", ["a"], "echo {{ tasks.a.outputs.x }} {{ params.n }} {{ run.id }}")],
        parameters=[{"name": "n", "type": "int", "default": 1}],
    )
    graph = validate_pipeline(ok)
    assert list(graph.edges) == [("a", "b")]
    assert code_of(spec([sh("a", command="echo {{ params.nope }}")]))[0] == "UNKNOWN_PARAMETER"
    assert code_of(spec([sh("a", command="echo {{ tasks.zz.outputs.x }}")]))[0] == "UNKNOWN_TASK_REFERENCE"
    # b is not upstream of a: its outputs cannot exist when a runs
    code, message = code_of(spec([sh("a", command="{{ tasks.b.outputs.x }}"), sh("b")]))
    assert code == "REFERENCE_NOT_UPSTREAM" and "depends_on" in message
    assert code_of(spec([sh("a", command="{{ tasks.b.x }}"), sh("b")]))[0] == "INVALID_REFERENCE"
    assert code_of(spec([sh("a", command="{{ os.system }}")]))[0] == "INVALID_REFERENCE"


def test_a_transitive_upstream_may_be_referenced() -> None:
    validate_pipeline(spec([sh("a"), sh("b", ["a"]), sh("c", ["b"], "{{ tasks.a.outputs.x }}")]))


def test_kind_specific_fields_and_resources_are_checked() -> None:
    with pytest.raises(ValueError, match="a python task needs callable"):
        TaskSpec.model_validate({"name": "t", "kind": "python"})
    with pytest.raises(ValueError, match="search_space"):
        TaskSpec.model_validate({"name": "t", "kind": "hpo", "callable": "m:f"})
    with pytest.raises(ValueError, match=r"resources\.memory"):
        TaskSpec.model_validate(
            {"name": "t", "kind": "shell", "command": "x", "resources": {"memory": "lots"}}
        )
    with pytest.raises(ValueError, match="low"):
        TaskSpec.model_validate(
            {
                "name": "t",
                "kind": "hpo",
                "callable": "m:f",
                "search_space": {"x": {"type": "int", "low": 5, "high": 1}},
            }
        )
    t = TaskSpec.model_validate({"name": "t", "kind": "shell", "command": "x", "resources": {"cpu": 1.5}})
    assert t.cpu_slots == 2 and t.cache_enabled
    assert not TaskSpec.model_validate({"name": "h", "kind": "http", "url": "http://x"}).cache_enabled


def test_parameters_are_typed_defaulted_and_unknown_ones_refused() -> None:
    s = spec(
        [sh("a")],
        parameters={
            "n": {"type": "int", "default": 3},
            "lr": {"type": "float"},
            "tag": {"type": "string", "default": "x"},
        },
    )
    assert resolve_parameters(s, {"lr": 1}) == {"n": 3, "lr": 1.0, "tag": "x"}
    with pytest.raises(Unprocessable) as err:
        resolve_parameters(s, {"lr": 0.1, "bogus": 1})
    assert err.value.code == "UNKNOWN_PARAMETER" and "bogus" in err.value.message
    with pytest.raises(Unprocessable) as err:
        resolve_parameters(s, {"lr": "fast"})
    assert err.value.code == "PARAMETER_TYPE_ERROR" and "'lr'" in err.value.message
    with pytest.raises(Unprocessable) as err:
        resolve_parameters(s, {})
    assert err.value.code == "MISSING_PARAMETER"
    with pytest.raises(Unprocessable):
        resolve_parameters(s, {"lr": 0.1, "n": True})  # a bool is not an int


def test_templating_keeps_types_for_whole_references_and_formats_inside_strings() -> None:
    scope = {"params": {"n": 3}, "tasks": {"a": {"m": {"k": [1, 2]}, "uri": "s3://x"}}, "run": {"id": "r1"}}
    assert render("{{ params.n }}", scope) == 3
    assert render(" {{tasks.a.outputs.m}} ", scope) == {"k": [1, 2]}
    assert render("n={{ params.n }} m={{ tasks.a.outputs.m }}", scope) == 'n=3 m={"k":[1,2]}'
    assert render({"x": ["{{ tasks.a.outputs.m.k.1 }}", "{{ run.id }}"]}, scope) == {"x": [2, "r1"]}
    with pytest.raises(MissingReference, match="model_uri"):
        render("{{ tasks.a.outputs.model_uri }}", scope)
    with pytest.raises(MissingReference, match="did not succeed"):
        render("{{ tasks.b.outputs.x }}", scope)


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    [
        ("all_success", [], "run"),
        ("all_success", ["succeeded", "cached"], "run"),
        ("all_success", ["succeeded", "running"], "wait"),
        ("all_success", ["failed", "running"], "upstream_failed"),
        ("all_success", ["succeeded", "skipped"], "skip"),
        ("all_done", ["failed", "succeeded"], "run"),
        ("all_done", ["failed", "pending"], "wait"),
        ("one_failed", ["failed", "running"], "run"),
        ("one_failed", ["succeeded", "succeeded"], "skip"),
        ("one_failed", ["succeeded", "running"], "wait"),
        ("none_failed", ["succeeded", "skipped"], "run"),
        ("none_failed", ["upstream_failed", "succeeded"], "upstream_failed"),
        ("none_failed", ["succeeded", "up_for_retry"], "wait"),
    ],
)
def test_trigger_rules(rule: str, upstream: list[str], expected: str) -> None:
    assert decide(rule, upstream) == expected


def test_retry_delays_grow_exponentially_with_bounded_jitter() -> None:
    task = TaskSpec.model_validate(
        {
            "name": "t",
            "kind": "shell",
            "command": "x",
            "retry_delay_seconds": 2,
            "retry_backoff": 3,
            "max_retry_delay_seconds": 50,
        }
    )
    rng = random.Random(7)
    for failures, full in [(1, 2), (2, 6), (3, 18), (4, 50), (9, 50)]:
        delays = [retry_delay(task, failures, rng) for _ in range(200)]
        assert min(delays) >= full / 2 and max(delays) <= full
        assert max(delays) - min(delays) > full / 10  # jittered, not constant


def test_cache_key_follows_definition_and_inputs_not_name_or_policy() -> None:
    a = TaskSpec.model_validate({"name": "a", "kind": "python", "callable": "m:f", "retries": 3})
    b = TaskSpec.model_validate({"name": "b", "kind": "python", "callable": "m:f"})
    c = TaskSpec.model_validate({"name": "a", "kind": "python", "callable": "m:g"})
    assert cache_key(a, {"inputs": {"x": 1}}) == cache_key(b, {"inputs": {"x": 1}})
    assert cache_key(a, {"inputs": {"x": 1}}) != cache_key(a, {"inputs": {"x": 2}})
    assert cache_key(a, {"inputs": {}}) != cache_key(c, {"inputs": {}})


def test_cron_in_a_timezone_and_bad_expressions() -> None:
    after = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    # 03:00 in Paris is 02:00 UTC in winter, 01:00 UTC after the switch to summer time (29 March)
    assert next_fire("0 3 * * *", "Europe/Paris", after) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert next_fire("0 3 * * *", "UTC", after) == datetime(2026, 3, 29, 3, 0, tzinfo=UTC)
    hours = fires_between(
        "0 * * * *", "UTC", datetime(2026, 1, 1, 0, 0, tzinfo=UTC), datetime(2026, 1, 1, 3, 0, tzinfo=UTC)
    )
    assert [h.hour for h in hours] == [0, 1, 2, 3]
    for bad in ("61 * * * *", "every day", "* * *"):
        with pytest.raises(Unprocessable) as err:
            check_cron(bad)
        assert err.value.code == "INVALID_CRON"
    with pytest.raises(Unprocessable) as err:
        zone("Mars/Olympus")
    assert err.value.code == "INVALID_TIMEZONE"


def test_an_hpo_experiment_may_reference_parameters_but_the_metric_may_not() -> None:
    hpo = {
        "name": "tune",
        "kind": "hpo",
        "callable": "m:f",
        "search_space": {"x": {"type": "float", "low": 0, "high": 1}},
        "experiment": "{{ params.exp }}",
    }
    code, _ = code_of(spec([hpo]))
    assert code == "UNKNOWN_PARAMETER"  # the experiment is a templated field, checked like the others
    ok = spec([hpo], parameters={"exp": {"type": "string", "default": "e"}})
    validate_pipeline(ok)
    assert render(ok.tasks[0].templated(), {"params": {"exp": "churn"}})["experiment"] == "churn"
    with pytest.raises(ValueError, match="not resolved"):
        TaskSpec.model_validate({**hpo, "metric": "{{ params.metric }}"})
