"""`mlops experiments ...` and `mlops runs ...`: the experiment tracking commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Column, Table

from mlops_client.cli_common import JsonOpt, bytes_bar, client_for, console, emit, err, pairs
from mlops_client.errors import NotFoundError
from mlops_client.tracking import Run, TrackingClient

experiments_app = typer.Typer(help="Experiment tracking: experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="Experiment tracking: runs, metrics, params, artifacts.", no_args_is_help=True)


@contextmanager
def tracking() -> Iterator[TrackingClient]:
    with client_for(TrackingClient, "tracking_url") as client:
        yield client


def _experiment_id(client: TrackingClient, ref: str) -> str:
    """An experiment given by name, or by id when no experiment has that name."""
    try:
        return client.get_experiment_by_name(ref).id
    except NotFoundError:
        if not ref.isdigit():
            raise
    return client.get_experiment(ref).id


def _string_pairs(items: list[str], what: str) -> dict[str, str]:
    """key=value pairs keeping the value as typed (a param "1e-3" must not become "0.001")."""
    pairs(items, what)  # exits on an item without "="
    return {key: value for key, _, value in (item.partition("=") for item in items)}


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms else "-"


def _runs_table(runs: list[Run]) -> Table:
    table = Table("name", "status", "started", "params", "metrics")
    table.columns.insert(0, Column("run id", no_wrap=True, min_width=32))  # ids are copied whole
    for r in runs:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        metrics = ", ".join(f"{k}={v:g}" for k, v in r.metrics.items())
        table.add_row(r.id, r.name or "-", r.status, _when(r.start_time), params, metrics)
    return table


ViewOpt = Annotated[str, typer.Option("--view", help="ACTIVE_ONLY, DELETED_ONLY or ALL")]
FilterOpt = Annotated[
    str | None, typer.Option("--filter", help="e.g. \"metrics.auc > 0.9 and params.depth = '6'\"")
]
OrderOpt = Annotated[list[str], typer.Option("--order-by", help="e.g. 'metrics.auc DESC' (repeatable)")]
MaxOpt = Annotated[int | None, typer.Option("--max", help="at most this many runs (default: all)")]


@experiments_app.command("list")
def list_experiments(
    prefix: Annotated[str | None, typer.Option("--prefix", help="name prefix")] = None,
    filter: Annotated[str | None, typer.Option("--filter", help="e.g. \"tags.team = 'growth'\"")] = None,
    view: ViewOpt = "ACTIVE_ONLY",
    as_json: JsonOpt = False,
) -> None:
    """List experiments (all pages)."""
    with tracking() as client:
        found = list(client.iter_experiments(name_prefix=prefix, filter=filter, view=view))
    table = Table("id", "name", "stage", "tags", "created")
    for e in found:
        tags = ", ".join(f"{k}={v}" for k, v in e.tags.items())
        table.add_row(e.id, e.name, e.lifecycle_stage, tags, _when(e.creation_time))
    emit(found, as_json, table)


@experiments_app.command("create")
def create_experiment(
    name: str,
    description: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="key=value (repeatable)")] = [],
    as_json: JsonOpt = False,
) -> None:
    """Create an experiment."""
    tags = _string_pairs(tag, "tag")
    with tracking() as client:
        created = client.create_experiment(name, description=description, tags=tags)
    if as_json:
        emit(created, True)
    else:
        console.print(f"created experiment {created.name} (id {created.id})")


@experiments_app.command("get")
def get_experiment(
    experiment: Annotated[str, typer.Argument(help="name or id")], as_json: JsonOpt = False
) -> None:
    """An experiment and its latest runs."""
    with tracking() as client:
        found = client.get_experiment(_experiment_id(client, experiment))
        runs = client.list_runs(found.id, limit=20).items
    if as_json:
        emit(found, True)
        return
    console.print(
        f"[bold]{found.name}[/bold] (id {found.id}, {found.lifecycle_stage}) {found.description or ''}"
    )
    if found.tags:
        console.print("tags: " + ", ".join(f"{k}={v}" for k, v in found.tags.items()))
    console.print(_runs_table(runs))


@experiments_app.command("delete")
def delete_experiment(experiment: Annotated[str, typer.Argument(help="name or id")]) -> None:
    """Delete an experiment and hide its runs (it can be restored)."""
    with tracking() as client:
        experiment_id = _experiment_id(client, experiment)
        client.delete_experiment(experiment_id)
    console.print(f"deleted experiment {experiment} (id {experiment_id})")


@runs_app.command("list")
def list_runs(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    filter: FilterOpt = None,
    order_by: OrderOpt = [],
    view: ViewOpt = "ACTIVE_ONLY",
    limit: MaxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List an experiment's runs (all pages, or --max)."""
    with tracking() as client:
        experiment_id = _experiment_id(client, experiment)
        pages = client.iter_runs(experiment_id, filter=filter, order_by=order_by, view=view)
        found = list(islice(pages, limit))
    emit(found, as_json, _runs_table(found))


@runs_app.command("get")
def get_run(
    experiment: Annotated[str, typer.Argument(help="name or id")], run_id: str, as_json: JsonOpt = False
) -> None:
    """A run: status, params, latest metrics, tags."""
    with tracking() as client:
        run = client.get_run(_experiment_id(client, experiment), run_id)
    table = Table("field", "value")
    for label, value in (
        ("run id", run.id),
        ("name", run.name or "-"),
        ("status", run.status),
        ("started", _when(run.start_time)),
        ("ended", _when(run.end_time)),
        ("parent", run.parent_run_id or "-"),
    ):
        table.add_row(label, value)
    for key, param in run.params.items():
        table.add_row(f"param {key}", param)
    for key, metric in run.metrics.items():
        table.add_row(f"metric {key}", f"{metric:g}")
    for key, tag in run.tags.items():
        table.add_row(f"tag {key}", tag)
    emit(run, as_json, table)


@runs_app.command("search")
def search_runs(
    experiment: Annotated[list[str], typer.Option("--experiment", "-e", help="name or id (repeatable)")],
    filter: FilterOpt = None,
    order_by: OrderOpt = [],
    view: ViewOpt = "ACTIVE_ONLY",
    limit: MaxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search runs across experiments."""
    with tracking() as client:
        ids = [_experiment_id(client, e) for e in experiment]
        pages = client.iter_search_runs(ids, filter=filter, order_by=order_by, view=view)
        found = list(islice(pages, limit))
    emit(found, as_json, _runs_table(found))


@runs_app.command("compare")
def compare_runs(
    run_ids: Annotated[list[str], typer.Argument(help="run ids")], as_json: JsonOpt = False
) -> None:
    """Params and latest metrics side by side; differing rows are marked *."""
    with tracking() as client:
        result = client.compare_runs(run_ids)
    table = Table("", *(r.name or r.id[:8] for r in result.runs))
    ids = [r.id for r in result.runs]
    for key, by_run in result.params.items():
        mark = "*" if key in result.differing_params else ""
        table.add_row(f"{mark}param {key}", *(by_run.get(i) or "-" for i in ids))
    for key, values in result.metrics.items():
        mark = "*" if key in result.differing_metrics else ""
        cells = ("-" if values.get(i) is None else f"{values[i]:g}" for i in ids)
        table.add_row(f"{mark}metric {key}", *cells)
    emit(result, as_json, table)


@runs_app.command("best")
def best_run(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    metric: Annotated[str, typer.Option("--metric", "-m", help="metric to rank by")],
    mode: Annotated[str, typer.Option("--mode", help="max or min")] = "max",
    filter: FilterOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The run with the best latest value of a metric."""
    with tracking() as client:
        run = client.best_run(_experiment_id(client, experiment), metric, mode=mode, filter=filter)
    emit(run, as_json, _runs_table([run]))


@runs_app.command("log-metric")
def log_metric(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    run_id: str,
    metrics: Annotated[list[str], typer.Argument(help="key=value (NaN, inf allowed)")],
    step: Annotated[int, typer.Option("--step")] = 0,
) -> None:
    """Log metric values to a run at one step."""
    values = pairs(metrics, "metric", number=True)
    with tracking() as client:
        logged = client.log_metrics(_experiment_id(client, experiment), run_id, values, step=step)
    console.print(f"logged {logged} metric value(s) to run {run_id} at step {step}")


@runs_app.command("log-param")
def log_param(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    run_id: str,
    params: Annotated[list[str], typer.Argument(help="key=value (params never change once logged)")],
) -> None:
    """Log params to a run."""
    values = _string_pairs(params, "param")
    with tracking() as client:
        client.log_params(_experiment_id(client, experiment), run_id, values)
    console.print(f"logged {len(values)} param(s) to run {run_id}")


@runs_app.command("upload")
def upload_run_artifact(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    run_id: str,
    path: Path,
    artifact_path: Annotated[
        str | None, typer.Option("--artifact-path", help="target path (a file) or folder (a directory)")
    ] = None,
) -> None:
    """Upload a file or a directory to a run's artifacts (streamed, with a progress bar)."""
    if not path.exists():
        err.print(f"[red]error[/red] {path} does not exist")
        raise typer.Exit(2)
    with tracking() as client:
        experiment_id = _experiment_id(client, experiment)
        with bytes_bar(f"upload {path.name}") as progress:
            uploaded = client.upload_artifact(
                experiment_id, run_id, path, artifact_path=artifact_path, progress=progress
            )
    size = sum(u.size for u in uploaded)
    console.print(f"uploaded {len(uploaded)} file(s), {size} bytes, to run {run_id}")


@runs_app.command("download")
def download_run_artifact(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    run_id: str,
    path: Annotated[str | None, typer.Argument(help="a file or folder (default: all artifacts)")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="file or directory")] = Path("."),
) -> None:
    """Download a run's artifact file or folder (streamed, with a progress bar)."""
    with tracking() as client:
        experiment_id = _experiment_id(client, experiment)
        with bytes_bar(f"download {path or run_id}") as progress:
            target = client.download_artifact(experiment_id, run_id, output, path=path, progress=progress)
    console.print(f"saved {target}")
