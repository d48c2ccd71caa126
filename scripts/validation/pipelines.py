"""Pipeline orchestrator: define a DAG, run it with a parameter, wait for success, outputs, logs."""

from __future__ import annotations

from dataclasses import dataclass

from mlops_client import NotFoundError

from validation.context import Context
from validation.core import Journey, expect, kv

RUN_SECONDS = 120


@dataclass
class _State:
    pipeline: str
    run_id: str = ""


def definition(name: str) -> dict[str, object]:
    return {
        "name": name,
        "description": "platform validation: two shell tasks and an output passed between them",
        "parameters": {"ds": {"type": "string", "default": "today"}},
        "tasks": [
            {
                "name": "extract",
                "kind": "shell",
                "cache": False,  # a cached task has no attempt, hence no log to check
                "command": 'echo extracting {{ params.ds }}; echo "{\\"rows\\": 42}" > $MLOPS_TASK_OUTPUTS',
            },
            {
                "name": "report",
                "kind": "shell",
                "depends_on": ["extract"],
                "cache": False,
                "command": "echo {{ tasks.extract.outputs.rows }} rows for {{ params.ds }}",
                "retries": 1,
                "timeout_seconds": 60,
            },
        ],
    }


def journey(ctx: Context) -> Journey:
    j = Journey("pipelines", ctx.table)
    s = _State(ctx.name("pipeline"))
    pipelines = ctx.mlops.pipelines

    @j.step("create a pipeline")
    def create() -> str:
        created = pipelines.create_pipeline(definition(s.pipeline))
        return kv(pipeline=created.name, version=created.version)

    @j.step("run it with a parameter and wait for success")
    def run() -> str:
        started = pipelines.trigger(s.pipeline, {"ds": "2026-11-22"})
        s.run_id = started.id
        done = pipelines.wait_for_run(started.id, timeout=RUN_SECONDS)
        states = {t.name: t.state for t in done.tasks}
        expect(done.state == "succeeded", f"run {done.id} {done.state}: {states}")
        return kv(run=done.id, state=done.state, tasks=states)

    @j.step("task outputs passed downstream")
    def outputs() -> str:
        run = pipelines.get_run(s.run_id)
        rows = run.task("extract").outputs.get("rows")
        expect(rows == 42, f"extract outputs {run.task('extract').outputs}")
        return kv(extract_outputs=run.task("extract").outputs)

    @j.step("task logs")
    def logs() -> str:
        text = pipelines.logs(s.run_id, "report").text
        expect("42 rows for 2026-11-22" in text, f"report log: {text[-200:]!r}")
        line = next(ln for ln in text.splitlines() if "rows for" in ln)
        return kv(report_log=repr(line.strip()))

    @j.on_cleanup("clean up the test pipeline")
    def cleanup() -> str:
        try:
            pipelines.delete_pipeline(s.pipeline)
        except NotFoundError:
            return "nothing created"
        return f"deleted {s.pipeline} with its runs"

    return j
