"""`mlops pipelines ...`: the pipeline orchestrator from a terminal (registered in cli.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table

from mlops_client.cli_common import JsonOpt, client_for, console, emit, err, fail, pairs
from mlops_client.pipelines import PipelinesClient
from mlops_client.pipelines_models import Pipeline, PipelineRun, Schedule

pipelines_app = typer.Typer(
    help="Pipeline orchestrator: pipelines, runs, task logs, schedules, backfills.", no_args_is_help=True
)

ParamOpt = Annotated[
    list[str],
    typer.Option("--param", "-p", help="name=value (repeatable); the value is read as JSON if it can be"),
]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="follow the run until it ends")]
TimeoutOpt = Annotated[float | None, typer.Option(help="give up waiting after this many seconds")]
PollOpt = Annotated[float, typer.Option("--poll", help="at most this many seconds between progress checks")]
MaxOpt = Annotated[int, typer.Option("--max", help="at most this many (newest first)")]


@contextmanager
def orchestrator() -> Iterator[PipelinesClient]:
    """A client configured by `mlops --pipelines-url/--api-key`; service errors exit 1."""
    with client_for(PipelinesClient, "pipelines_url") as client:
        yield client


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "-"


def _took(start: datetime | None, end: datetime | None) -> str:
    return f"{(end - start).total_seconds():.1f}s" if start and end else "-"


def _summary(error: str | None) -> str:
    """One line of a task's error: the exception of a traceback, else the first line."""
    lines = (error or "").strip().splitlines()
    if not lines:
        return ""
    return (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:120]


def _read_definition(file: Path) -> dict[str, Any]:
    if file.suffix.lower() in (".yaml", ".yml"):
        raise fail(f"{file}: give the definition as JSON (YAML is not supported)")
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"could not read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise fail(f"{file}: give a pipeline definition object (name, tasks, ...)")
    return data


# pipelines ------------------------------------------------------------------------------------
@pipelines_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="JSON definition: name, parameters, tasks, ...")],
    as_json: JsonOpt = False,
) -> None:
    """Create a pipeline, or its next version when the definition changed."""
    definition = _read_definition(file)
    with orchestrator() as client:
        pipeline = client.create_pipeline(definition)
    if as_json:
        emit(pipeline, True)
    elif pipeline.created:
        what = "created pipeline" if pipeline.version == 1 else "new version of"
        console.print(f"{what} {pipeline.name}: version {pipeline.version}")
    else:
        console.print(f"pipeline {pipeline.name} unchanged: version {pipeline.version}")


def _pipelines_table(found: list[Pipeline]) -> Table:
    table = Table(Column("name", no_wrap=True), "version", "description", "tags", "updated")
    for p in found:
        tags = ", ".join(f"{k}={v}" for k, v in p.tags.items())
        table.add_row(p.name, str(p.version), p.description, tags, _when(p.updated_at))
    return table


@pipelines_app.command("list")
def list_pipelines(
    prefix: Annotated[str | None, typer.Option("--prefix", help="name prefix")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every pipeline (all pages)."""
    with orchestrator() as client:
        found = list(client.iter_pipelines(name_prefix=prefix))
    emit(found, as_json, _pipelines_table(found))


@pipelines_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="name or id")],
    version: Annotated[int | None, typer.Option(help="this version's definition (default: latest)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A pipeline's definition: parameters and tasks."""
    with orchestrator() as client:
        pipeline = client.get_pipeline(name)
        if version is not None:
            shown = client.get_version(name, version).definition
            pipeline = pipeline.model_copy(update={"definition": shown})
    if as_json:
        emit(pipeline, True)
        return
    definition = pipeline.definition or {}
    console.print(
        f"[bold]{pipeline.name}[/bold] version {version or pipeline.version} of {pipeline.versions} "
        f"(id {pipeline.id}) {pipeline.description}"
    )
    params = definition.get("parameters") or []
    if params:
        table = Table("parameter", "type", "default", "description")
        for p in params:
            table.add_row(
                p["name"], p.get("type", "string"), json.dumps(p.get("default")), p.get("description", "")
            )
        console.print(table)
    tasks = Table("task", "kind", "depends on", "retries", "timeout (s)")
    for t in definition.get("tasks", []):
        timeout = t.get("timeout_seconds")
        tasks.add_row(
            t["name"], t["kind"], ", ".join(t.get("depends_on") or []) or "-", str(t.get("retries", 0)),
            f"{timeout:g}" if timeout else "-",
        )  # fmt: skip
    console.print(tasks)


@pipelines_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="name or id")]) -> None:
    """Delete a pipeline with its versions, runs and schedules (refused while runs are active)."""
    with orchestrator() as client:
        client.delete_pipeline(name)
    console.print(f"deleted pipeline {name}")


# runs -----------------------------------------------------------------------------------------
def _runs_table(runs: list[PipelineRun]) -> Table:
    table = Table(
        "pipeline",
        "version",
        "state",
        "tasks",
        "trigger",
        "logical date",
        Column("created", no_wrap=True),
        "took",
    )
    table.columns.insert(0, Column("run id", no_wrap=True, min_width=36))  # ids are copied whole
    for r in runs:
        done = f"{r.progress.done}/{r.progress.total}"
        table.add_row(
            r.id, r.pipeline, str(r.pipeline_version), r.state, done, r.trigger, _when(r.logical_date),
            _when(r.created_at), _took(r.started_at, r.finished_at),
        )  # fmt: skip
    return table


def _tasks_table(run: PipelineRun) -> Table:
    table = Table("task", "kind", "state", "try", "started", "took", "error")
    for t in run.tasks:
        took = _took(t.started_at, t.finished_at)
        table.add_row(
            t.name, t.kind, t.state, str(t.try_number), _when(t.started_at), took, _summary(t.error)
        )  # fmt: skip
    return table


def _running(run: PipelineRun) -> str:
    names = [t.name for t in run.tasks if t.state == "running"]
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


def _follow(client: PipelinesClient, run: PipelineRun, timeout: float | None, poll: float) -> PipelineRun:
    """Wait for the run with a progress bar of tasks done/total on stderr."""
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[now]}"),
    )
    with Progress(*columns, console=err) as progress:
        bar = progress.add_task(f"{run.pipeline} run {run.id[:8]}", total=run.progress.total or None, now="")

        def show(current: PipelineRun) -> None:
            p = current.progress
            progress.update(
                bar, completed=p.done, total=p.total or None, now=f"{current.state} {_running(current)}"
            )

        try:
            return client.wait_for_run(
                run.id, timeout=timeout, poll_interval=poll, progress=show, raise_on_failure=False
            )
        except TimeoutError as exc:
            raise fail(f"{exc} (see `mlops pipelines status {run.id}`)", 1) from None


def _report(run: PipelineRun, as_json: bool) -> None:
    """Print a finished (or just started) run; a failed or cancelled one exits 1."""
    if as_json:
        emit(run, True)
    else:
        console.print(
            f"run {run.id} of {run.pipeline} version {run.pipeline_version}: {run.state} "
            f"({run.progress.done}/{run.progress.total} tasks)"
        )
    if run.state in ("failed", "cancelled"):
        raise fail(run.failure(), 1)


@pipelines_app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="name or id")],
    param: ParamOpt = [],
    version: Annotated[int | None, typer.Option(help="run this version (default: latest)")] = None,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    poll: PollOpt = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Start a run (-p n_trials=8 -p lr=0.1); --wait shows its progress and exits 1 if it fails."""
    parameters = pairs(param, "parameter")
    with orchestrator() as client:
        started = client.trigger(name, parameters, version=version)
        if not wait:
            _report(started, as_json)
            return
        finished = _follow(client, started, timeout, poll)
    _report(finished, as_json)


@pipelines_app.command("runs")
def list_runs(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="only this pipeline's")] = None,
    state: Annotated[str | None, typer.Option(help="queued, running, succeeded, failed, ...")] = None,
    trigger: Annotated[
        str | None, typer.Option(help="manual, schedule, backfill, webhook, alertmanager")
    ] = None,
    limit: MaxOpt = 20,
    as_json: JsonOpt = False,
) -> None:
    """Runs, newest first."""
    with orchestrator() as client:
        found = list(islice(client.iter_runs(pipeline=pipeline, state=state, trigger=trigger), limit))
    emit(found, as_json, _runs_table(found))


@pipelines_app.command("status")
def status(run_id: str, as_json: JsonOpt = False) -> None:
    """A run: its state, progress and every task with its latest error."""
    with orchestrator() as client:
        found = client.get_run(run_id)
    if as_json:
        emit(found, True)
        return
    p = found.progress
    console.print(
        f"[bold]{found.pipeline}[/bold] version {found.pipeline_version} run {found.id}: {found.state}, "
        f"{p.done}/{p.total} tasks ({p.percent:g}%), trigger {found.trigger}, "
        f"took {_took(found.started_at, found.finished_at)}"
    )
    if found.parameters:
        console.print("parameters: " + ", ".join(f"{k}={json.dumps(v)}" for k, v in found.parameters.items()))
    if found.error:
        console.print(f"[red]{found.error}[/red]")
    console.print(_tasks_table(found))


@pipelines_app.command("logs")
def logs(
    run_id: str,
    task: str,
    attempt: Annotated[int | None, typer.Option(help="attempt number (default: latest)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="stream until the attempt ends")] = False,
) -> None:
    """A task attempt's log (stdout and stderr of the task)."""
    with orchestrator() as client:
        if follow:
            for text in client.follow_logs(run_id, task, attempt=attempt):
                sys.stdout.write(text)
                sys.stdout.flush()
            return
        offset, state = 0, None
        while True:  # the service answers the log in pieces (1 MiB by default)
            text, end, state = client.logs(run_id, task, attempt=attempt, offset=offset)
            sys.stdout.write(text)
            if end == offset:
                break
            offset = end
    if state and state != "succeeded":
        err.print(f"(attempt {state})")


@pipelines_app.command("cancel")
def cancel(run_id: str, as_json: JsonOpt = False) -> None:
    """Cancel a run: its running tasks are stopped."""
    with orchestrator() as client:
        found = client.cancel_run(run_id)
    if as_json:
        emit(found, True)
    else:
        console.print(f"run {found.id}: {found.state}")


@pipelines_app.command("retry")
def retry(
    run_id: str,
    wait: WaitOpt = False,
    timeout: TimeoutOpt = None,
    poll: PollOpt = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Run a failed or cancelled run's failed tasks again (succeeded ones keep their outputs)."""
    with orchestrator() as client:
        found = client.retry_run(run_id)
        if wait:
            found = _follow(client, found, timeout, poll)
    if wait:
        _report(found, as_json)
    elif as_json:
        emit(found, True)
    else:
        console.print(f"run {found.id}: {found.state}")


# schedules and backfills ----------------------------------------------------------------------
def _schedules_table(found: list[Schedule]) -> Table:
    table = Table("pipeline", "cron", "timezone", "enabled", "next run", "last run", "parameters")
    table.columns.insert(0, Column("id", no_wrap=True, min_width=36))
    for s in found:
        params = ", ".join(f"{k}={json.dumps(v)}" for k, v in s.parameters.items())
        table.add_row(
            s.id, s.pipeline, s.cron, s.timezone, "yes" if s.enabled else "no", _when(s.next_run_at),
            _when(s.last_run_at), params,
        )  # fmt: skip
    return table


@pipelines_app.command("schedule")
def schedule(
    name: Annotated[str, typer.Argument(help="name or id")],
    cron: Annotated[str, typer.Option(help='e.g. "0 3 * * *"')],
    timezone: Annotated[str, typer.Option(help="IANA name, e.g. Europe/Paris")] = "UTC",
    param: ParamOpt = [],
    catchup: Annotated[
        bool, typer.Option(help="also start the runs missed while the service was down")
    ] = False,
    enabled: Annotated[bool, typer.Option("--enabled/--disabled")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline on a cron schedule."""
    parameters = pairs(param, "parameter")
    with orchestrator() as client:
        created = client.create_schedule(
            name, cron, timezone=timezone, parameters=parameters, catchup=catchup, enabled=enabled
        )
    if as_json:
        emit(created, True)
    else:
        console.print(
            f"scheduled {created.pipeline} at {created.cron} {created.timezone} (id {created.id}): "
            f"next run {_when(created.next_run_at)}"
        )


@pipelines_app.command("schedules")
def schedules(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="only this pipeline's")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Schedules (all pages)."""
    with orchestrator() as client:
        found = list(client.iter_schedules(pipeline=pipeline))
    emit(found, as_json, _schedules_table(found))


@pipelines_app.command("unschedule")
def unschedule(schedule_id: str) -> None:
    """Delete a schedule."""
    with orchestrator() as client:
        client.delete_schedule(schedule_id)
    console.print(f"deleted schedule {schedule_id}")


@pipelines_app.command("backfill")
def backfill(
    name: Annotated[str, typer.Argument(help="name or id")],
    start: Annotated[str, typer.Option(help="first logical date (ISO 8601; a bare date: that day)")],
    end: Annotated[
        str, typer.Option(help="last logical date, included (ISO 8601; a bare date: that whole day)")
    ],
    cron: Annotated[str | None, typer.Option(help="default: the pipeline's first schedule")] = None,
    timezone: Annotated[str | None, typer.Option(help="of the cron (default UTC)")] = None,
    param: ParamOpt = [],
    as_json: JsonOpt = False,
) -> None:
    """One run per cron tick from --start to --end (included), each with its logical date (and
    the parameters ds and logical_date, when the pipeline declares them)."""
    parameters = pairs(param, "parameter")
    with orchestrator() as client:
        result = client.backfill(name, start, end, cron=cron, timezone=timezone, parameters=parameters)
    if as_json:
        emit(result, True)
        return
    console.print(f"started {result.count} backfill run(s) of {name}")
    console.print(_runs_table(result.runs))
