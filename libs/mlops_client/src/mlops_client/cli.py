"""`mlops` command line: the platform from a terminal (model registry and monitoring, experiment tracking,
feature store, pipelines, A/B testing)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops_client.ab_cli import ab_app
from mlops_client.cli_common import JsonOpt, bytes_bar, client_for, console, emit, err, pairs, state
from mlops_client.features_cli import features_app
from mlops_client.monitoring_cli import monitor_app
from mlops_client.pipelines_cli import pipelines_app
from mlops_client.registry import RegistryClient
from mlops_client.tracking_cli import experiments_app, runs_app

app = typer.Typer(help="MLOps platform command line.", no_args_is_help=True, pretty_exceptions_enable=False)
models_app = typer.Typer(help="Model registry: versions, artifacts, aliases, stages.", no_args_is_help=True)
alias_app = typer.Typer(help="Aliases: name@alias → version.", no_args_is_help=True)
app.add_typer(models_app, name="models")
models_app.add_typer(alias_app, name="alias")
app.add_typer(experiments_app, name="experiments")
app.add_typer(runs_app, name="runs")
app.add_typer(features_app, name="features")
app.add_typer(pipelines_app, name="pipelines")
app.add_typer(ab_app, name="ab")
app.add_typer(monitor_app, name="monitor")


def _print_version(value: bool) -> None:
    if value:
        console.print(f"mlops {package_version('mlops-client')}", highlight=False)
        raise typer.Exit()


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
    feature_store_url: Annotated[
        str | None,
        typer.Option("--feature-store-url", help="feature store URL (default: MLOPS_FEATURE_STORE_URL)"),
    ] = None,
    pipelines_url: Annotated[
        str | None,
        typer.Option(
            "--pipelines-url", help="pipeline orchestrator URL (default: MLOPS_PIPELINE_ORCHESTRATOR_URL)"
        ),
    ] = None,
    ab_testing_url: Annotated[
        str | None,
        typer.Option("--ab-testing-url", help="A/B testing URL (default: MLOPS_AB_TESTING_URL)"),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    state.update(
        url=url,
        api_key=api_key,
        tracking_url=tracking_url,
        feature_store_url=feature_store_url,
        pipelines_url=pipelines_url,
        ab_testing_url=ab_testing_url,
    )


@contextmanager
def registry() -> Iterator[RegistryClient]:
    with client_for(RegistryClient, "url") as client:
        yield client


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
    emit(found, as_json, table)


@models_app.command("get")
def get_model(name: str, as_json: JsonOpt = False) -> None:
    """A model with its versions."""
    with registry() as client:
        model = client.get_model(name)
    emit(model, as_json, _versions_table(model.versions or []))


@models_app.command("versions")
def versions(
    name: str, stage: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False
) -> None:
    """All versions of a model."""
    with registry() as client:
        found = list(client.iter_versions(name, stage=stage))
    emit(found, as_json, _versions_table(found))


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
    metrics, params = pairs(metric, "metric", number=True), pairs(param, "param")
    if file is not None and not file.exists():
        err.print(f"[red]error[/red] {file} does not exist")
        raise typer.Exit(2)
    bar = bytes_bar(f"upload {file.name}") if file is not None else nullcontext(None)
    with registry() as client, bar as progress:
        # one request: if the upload fails, no version is left without its artifact
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
            path=file,
            progress=progress,
        )
    if as_json:
        emit(created, True)
    else:
        console.print(
            f"registered {name} version {created.version}" + (f" sha256 {created.sha256}" if file else "")
        )


@models_app.command("upload")
def upload(name: str, version: str, path: Path) -> None:
    """Upload a file or a directory to a version (streamed, with a progress bar)."""
    with registry() as client, bytes_bar(f"upload {path.name}") as progress:
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
    with registry() as client, bytes_bar(f"download {name} {version}") as progress:
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
    emit(version, as_json, _versions_table([version]))


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
    emit(page.items, as_json, table)


@models_app.command("delete")
def delete(name: str, version: Annotated[str | None, typer.Option(help="only this version")] = None) -> None:
    """Delete a version, or the whole model (admin) with its artifacts."""
    with registry() as client:
        if version:
            client.delete_version(name, version)
        else:
            client.delete_model(name)
    console.print(f"deleted {name}" + (f" version {version}" if version else ""))


def main() -> None:
    app()
