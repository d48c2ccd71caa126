"""`mlops` command line: the platform from a terminal (model registry and experiment tracking)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Column, Table

from mlops_client.errors import MlopsError, NotFoundError
from mlops_client.registry import RegistryClient
from mlops_client.tracking import Run, TrackingClient

app = typer.Typer(help="MLOps platform command line.", no_args_is_help=True, pretty_exceptions_enable=False)
models_app = typer.Typer(help="Model registry: versions, artifacts, aliases, stages.", no_args_is_help=True)
alias_app = typer.Typer(help="Aliases: name@alias → version.", no_args_is_help=True)
experiments_app = typer.Typer(help="Experiment tracking: experiments.", no_args_is_help=True)
runs_app = typer.Typer(help="Experiment tracking: runs, metrics, params, artifacts.", no_args_is_help=True)
app.add_typer(models_app, name="models")
models_app.add_typer(alias_app, name="alias")
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")

console = Console()
err = Console(stderr=True)
_state: dict[str, Any] = {}

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


@app.callback()
def main_options(
    url: Annotated[
        str | None, typer.Option("--url", help="registry URL (default: MLOPS_MODEL_REGISTRY_URL)")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="API key (default: MLOPS_API_KEY)")] = None,
    tracking_url: Annotated[
        str | None,
        typer.Option(
            "--tracking-url", help="experiment tracking URL (default: MLOPS_EXPERIMENT_TRACKING_URL)"
        ),
    ] = None,
) -> None:
    _state.update(url=url, api_key=api_key, tracking_url=tracking_url)


@contextmanager
def registry() -> Iterator[RegistryClient]:
    try:
        with RegistryClient(_state.get("url"), api_key=_state.get("api_key")) as client:
            yield client
    except MlopsError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(1) from None


def _emit(data: Any, as_json: bool, table: Table | None = None) -> None:
    if as_json or table is None:
        plain = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
        if isinstance(plain, list):
            plain = [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in plain]
        sys.stdout.write(json.dumps(plain, indent=2, default=str) + "\n")
    else:
        console.print(table)


def _pairs(items: list[str], what: str, number: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            err.print(f"[red]error[/red] {what} {item!r} must look like key=value")
            raise typer.Exit(2)
        try:
            out[key] = float(value) if number else json.loads(value)
        except ValueError:
            if number:
                err.print(f"[red]error[/red] {what} {key!r} needs a number, got {value!r}")
                raise typer.Exit(2) from None
            out[key] = value
    return out


@contextmanager
def _bar(label: str) -> Iterator[Any]:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


def _versions_table(versions: list[Any]) -> Table:
    table = Table("version", "stage", "framework", "aliases", "metrics", "size", "created")
    for v in versions:
        metrics = ", ".join(f"{k}={val:g}" for k, val in v.metrics.items())
        table.add_row(
            v.version,
            v.stage,
            v.framework,
            ",".join(v.aliases),
            metrics,
            str(v.size_bytes),
            v.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


@models_app.command("list")
def list_models(
    tag: Annotated[list[str], typer.Option("--tag", help="required tag (repeatable)")] = [],
    framework: Annotated[str | None, typer.Option()] = None,
    metric: Annotated[list[str], typer.Option("--metric", help="threshold like 'accuracy>0.9'")] = [],
    prefix: Annotated[str | None, typer.Option("--prefix", help="name prefix")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List models (all pages) matching the filters."""
    with registry() as client:
        found = list(client.iter_models(name_prefix=prefix, tags=tag, framework=framework, metrics=metric))
    table = Table("name", "latest", "versions", "aliases", "tags")
    for m in found:
        aliases = ", ".join(f"{a}→{v}" for a, v in m.aliases.items())
        table.add_row(m.name, m.latest_version or "-", str(m.version_count), aliases, ",".join(m.tags))
    _emit(found, as_json, table)


@models_app.command("get")
def get_model(name: str, as_json: JsonOpt = False) -> None:
    """A model with its versions."""
    with registry() as client:
        model = client.get_model(name)
    _emit(model, as_json, _versions_table(model.versions or []))


@models_app.command("versions")
def versions(
    name: str, stage: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False
) -> None:
    """All versions of a model."""
    with registry() as client:
        found = list(client.iter_versions(name, stage=stage))
    _emit(found, as_json, _versions_table(found))


@models_app.command("register")
def register(
    name: str,
    version: Annotated[str | None, typer.Option(help="semver; default: next integer")] = None,
    framework: Annotated[str, typer.Option()] = "other",
    format: Annotated[str | None, typer.Option("--format")] = None,
    metric: Annotated[list[str], typer.Option("--metric", help="name=value (repeatable)")] = [],
    param: Annotated[list[str], typer.Option("--param", help="name=value (repeatable)")] = [],
    tag: Annotated[list[str], typer.Option("--tag")] = [],
    description: Annotated[str | None, typer.Option()] = None,
    run_id: Annotated[str | None, typer.Option("--run-id")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="parent version")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="artifact file or directory to upload")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a model version, and upload its artifact with --file."""
    metrics, params = _pairs(metric, "metric", number=True), _pairs(param, "param")
    if file is not None and not file.exists():
        err.print(f"[red]error[/red] {file} does not exist")
        raise typer.Exit(2)
    with registry() as client:
        created = client.register_model(
            name,
            version=version,
            framework=framework,
            format=format,
            metrics=metrics,
            params=params,
            tags=tag,
            description=description,
            run_id=run_id,
            parent_version=parent,
        )
        if file is not None:
            with _bar(f"upload {file.name}") as progress:
                created = client.upload_artifact(name, created.version, file, progress=progress)
    if as_json:
        _emit(created, True)
    else:
        console.print(
            f"registered {name} version {created.version}" + (f" sha256 {created.sha256}" if file else "")
        )


@models_app.command("upload")
def upload(name: str, version: str, path: Path) -> None:
    """Upload a file or a directory to a version (streamed, with a progress bar)."""
    with registry() as client, _bar(f"upload {path.name}") as progress:
        result = client.upload_artifact(name, version, path, progress=progress)
    console.print(f"{name} {result.version}: {len(result.artifacts)} file(s), sha256 {result.sha256}")


@models_app.command("download")
def download(
    name: str,
    version: str,
    path: Annotated[str | None, typer.Option("--path", help="one file of a multi-file version")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="file or directory")] = Path("."),
) -> None:
    """Download a version's artifact (resumable; sha256 verified)."""
    with registry() as client, _bar(f"download {name} {version}") as progress:
        target = client.download_artifact(name, version, output, path=path, progress=progress)
    console.print(f"saved {target}")


@alias_app.command("set")
def alias_set(name: str, alias: str, version: str) -> None:
    """Point an alias at a version (creating or moving it)."""
    with registry() as client:
        result = client.set_alias(name, alias, version)
    console.print(f"{name}@{result.alias} → {result.version}")


@alias_app.command("get")
def alias_get(name: str, alias: str, as_json: JsonOpt = False) -> None:
    """Resolve name@alias."""
    with registry() as client:
        version = client.get_alias(name, alias)
    _emit(version, as_json, _versions_table([version]))


@alias_app.command("delete")
def alias_delete(name: str, alias: str) -> None:
    """Remove an alias."""
    with registry() as client:
        client.delete_alias(name, alias)
    console.print(f"removed {name}@{alias}")


@alias_app.command("rollback")
def alias_rollback(name: str, alias: str) -> None:
    """Point an alias back at its previous target."""
    with registry() as client:
        result = client.rollback_alias(name, alias)
    console.print(
        f"{name}@{alias} → {result.version}"
        if result
        else f"{name}@{alias} removed (it had no previous target)"
    )


@models_app.command("stage")
def stage(
    name: str,
    version: str,
    stage: str,
    archive_existing: Annotated[bool, typer.Option("--archive-existing")] = False,
) -> None:
    """Move a version to None, Staging, Production or Archived."""
    with registry() as client:
        result = client.transition_stage(name, version, stage, archive_existing=archive_existing)
    console.print(f"{name} {result.version} is now in {result.stage}")


@models_app.command("history")
def history(name: str, as_json: JsonOpt = False) -> None:
    """Who moved which alias or stage, when."""
    with registry() as client:
        page = client.history(name, limit=1000)
    table = Table("when", "who", "kind", "name", "action", "from", "to")
    for t in page.items:
        table.add_row(
            t.at.strftime("%Y-%m-%d %H:%M:%S"),
            t.actor,
            t.kind,
            t.name,
            t.action,
            t.from_value or "-",
            t.to_value or "-",
        )
    _emit(page.items, as_json, table)


@models_app.command("delete")
def delete(name: str, version: Annotated[str | None, typer.Option(help="only this version")] = None) -> None:
    """Delete a version, or the whole model (admin) with its artifacts."""
    with registry() as client:
        if version:
            client.delete_version(name, version)
        else:
            client.delete_model(name)
    console.print(f"deleted {name}" + (f" version {version}" if version else ""))


# experiment tracking ---------------------------------------------------------------------------
@contextmanager
def tracking() -> Iterator[TrackingClient]:
    try:
        with TrackingClient(_state.get("tracking_url"), api_key=_state.get("api_key")) as client:
            yield client
    except MlopsError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(1) from None


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
    _pairs(items, what)  # exits on an item without "="
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
    _emit(found, as_json, table)


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
        _emit(created, True)
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
        _emit(found, True)
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
    _emit(found, as_json, _runs_table(found))


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
    _emit(run, as_json, table)


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
    _emit(found, as_json, _runs_table(found))


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
    _emit(result, as_json, table)


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
    _emit(run, as_json, _runs_table([run]))


@runs_app.command("log-metric")
def log_metric(
    experiment: Annotated[str, typer.Argument(help="name or id")],
    run_id: str,
    metrics: Annotated[list[str], typer.Argument(help="key=value (NaN, inf allowed)")],
    step: Annotated[int, typer.Option("--step")] = 0,
) -> None:
    """Log metric values to a run at one step."""
    values = _pairs(metrics, "metric", number=True)
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
        with _bar(f"upload {path.name}") as progress:
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
        with _bar(f"download {path or run_id}") as progress:
            target = client.download_artifact(experiment_id, run_id, output, path=path, progress=progress)
    console.print(f"saved {target}")


def main() -> None:
    app()
