"""`mlops features ...`: the feature store from a terminal (registered on the `mlops` app in cli.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress
from rich.table import Table

from mlops_client.cli_common import JsonOpt, bytes_bar, client_for, console, emit, err, fail
from mlops_client.features import FeatureStoreClient
from mlops_client.features_models import FeatureSet, MaterializationJob, OnlineFeatures

features_app = typer.Typer(
    help="Feature store: entities, feature sets, ingestion, materialization, serving.", no_args_is_help=True
)
entities_app = typer.Typer(help="Entities: what features describe, their join keys.", no_args_is_help=True)
sets_app = typer.Typer(help="Feature sets: typed, versioned groups of features.", no_args_is_help=True)
jobs_app = typer.Typer(help="Materialization jobs.", no_args_is_help=True)
features_app.add_typer(entities_app, name="entities")
features_app.add_typer(sets_app, name="sets")
features_app.add_typer(jobs_app, name="jobs")

TagOpt = Annotated[list[str], typer.Option("--tag", help="key=value (repeatable)")]


@contextmanager
def store() -> Iterator[FeatureStoreClient]:
    """A client configured by `mlops --feature-store-url/--api-key`; service errors exit 1."""
    with client_for(FeatureStoreClient, "feature_store_url") as client:
        yield client


def _tags(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise fail(f"tag {item!r} must look like key=value")
        out[key] = value
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"could not read {path}: {exc}") from None


def _rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON file: a list of row objects, {"rows": [...]}, or one row object."""
    data = _read_json(path)
    rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
    rows = [rows] if isinstance(rows, dict) else rows
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise fail(f'{path}: give a list of row objects or {{"rows": [...]}}')
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


# entities -------------------------------------------------------------------------------------
@entities_app.command("list")
def list_entities(as_json: JsonOpt = False) -> None:
    """Every entity."""
    with store() as client:
        found = list(client.iter_entities())
    table = Table("name", "join keys", "value type", "description")
    for e in found:
        table.add_row(e.name, ",".join(e.join_keys), e.value_type, e.description)
    emit(found, as_json, table)


@entities_app.command("create")
def create_entity(
    name: str,
    join_key: Annotated[list[str], typer.Option("--join-key", help="(repeatable) default: the name")] = [],
    value_type: Annotated[str, typer.Option("--value-type", help="string or int")] = "string",
    description: Annotated[str, typer.Option()] = "",
    tag: TagOpt = [],
    as_json: JsonOpt = False,
) -> None:
    """Create an entity."""
    tags = _tags(tag)
    with store() as client:
        created = client.create_entity(
            name, join_keys=join_key, value_type=value_type, description=description, tags=tags
        )
    if as_json:
        emit(created, True)
    else:
        console.print(f"created entity {created.name} (join keys {', '.join(created.join_keys)})")


# feature sets ---------------------------------------------------------------------------------
def _sets_table(sets: list[FeatureSet]) -> Table:
    table = Table("name", "entity", "version", "features", "ttl (s)", "materialized until")
    for fs in sets:
        features = ", ".join(f"{f.name}:{f.type}" for f in fs.features)
        ttl = str(fs.ttl_seconds) if fs.ttl_seconds else "-"
        table.add_row(fs.name, fs.entity, str(fs.version), features, ttl, fs.materialized_until or "-")
    return table


@sets_app.command("list")
def list_sets(
    entity: Annotated[str | None, typer.Option()] = None,
    prefix: Annotated[str | None, typer.Option("--prefix", help="name prefix")] = None,
    tag: Annotated[list[str], typer.Option("--tag", help="key or key=value (repeatable)")] = [],
    as_json: JsonOpt = False,
) -> None:
    """Feature sets (all pages) matching the filters."""
    with store() as client:
        found = list(client.iter_feature_sets(entity=entity, name_prefix=prefix, tags=tag))
    emit(found, as_json, _sets_table(found))


@sets_app.command("get")
def get_set(
    name: str,
    version: Annotated[int | None, typer.Option(help="schema version (default: latest)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A feature set and its features."""
    with store() as client:
        fs = client.get_feature_set(name, version=version)
    if as_json:
        emit(fs, True)
        return
    console.print(
        f"[bold]{fs.name}[/bold] entity {fs.entity} (join keys {', '.join(fs.join_keys)}), "
        f"version {fs.version} of {fs.latest_version}, ttl {fs.ttl_seconds or '-'} s"
    )
    table = Table("feature", "type", "description")
    for f in fs.features:
        table.add_row(f.name, f.type, f.description)
    console.print(table)


@sets_app.command("create")
def create_set(
    name: str,
    feature: Annotated[list[str], typer.Option("--feature", "-f", help="name:type (repeatable)")],
    entity: Annotated[str | None, typer.Option(help="default: the `default` entity")] = None,
    ttl: Annotated[str | None, typer.Option(help="e.g. 3600, 90m, 24h, 7d")] = None,
    description: Annotated[str, typer.Option()] = "",
    owner: Annotated[str | None, typer.Option()] = None,
    tag: TagOpt = [],
    as_json: JsonOpt = False,
) -> None:
    """Create a feature set: --feature age:int --feature score:float --entity user --ttl 7d."""
    features: dict[str, str] = {}
    for item in feature:
        fname, sep, ftype = item.partition(":")
        if not sep or not fname or not ftype:
            raise fail(f"feature {item!r} must look like name:type (e.g. age:int)")
        features[fname] = ftype
    tags = _tags(tag)
    with store() as client:
        created = client.create_feature_set(
            name, features, entity=entity, ttl=ttl, description=description, owner=owner, tags=tags
        )
    if as_json:
        emit(created, True)
    else:
        console.print(f"created feature set {created.name} version {created.version}")


@sets_app.command("apply")
def apply_set(
    file: Annotated[Path, typer.Option("--file", help="JSON definition: name, entity, features, ttl, ...")],
    as_json: JsonOpt = False,
) -> None:
    """Create a feature set, or a new schema version when its features changed (as `feast apply`)."""
    spec = _read_json(file)
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or "features" not in spec:
        raise fail(f'{file}: give an object with "name" and "features"')
    known = {"name", "entity", "features", "ttl", "ttl_seconds", "description", "owner", "tags", "breaking"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise fail(f"{file}: unknown fields {unknown}")
    with store() as client:
        fs = client.apply_feature_set(
            spec["name"],
            spec["features"],
            entity=spec.get("entity"),
            ttl=spec.get("ttl", spec.get("ttl_seconds")),
            description=spec.get("description"),
            owner=spec.get("owner"),
            tags=spec.get("tags"),
            breaking=bool(spec.get("breaking", False)),
        )
    if as_json:
        emit(fs, True)
    else:
        console.print(f"applied feature set {fs.name}: version {fs.latest_version}")


# rows -----------------------------------------------------------------------------------------
@features_app.command("ingest")
def ingest(
    feature_set: str,
    file: Annotated[Path, typer.Argument(help=".csv or .parquet (streamed), or .json rows")],
    version: Annotated[int | None, typer.Option(help="schema version of the rows (default: latest)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load rows into the offline store (all or none)."""
    if not file.is_file():
        raise fail(f"{file} does not exist")
    with store() as client:
        if file.suffix.lower() == ".json":
            result = client.ingest(feature_set, _rows(file), version=version)
        else:
            with bytes_bar(f"upload {file.name}") as progress:
                result = client.ingest(feature_set, file, version=version, progress=progress)
    if as_json:
        emit(result, True)
    else:
        console.print(f"ingested {result.rows_written} row(s) into {feature_set} version {result.version}")


@features_app.command("push")
def push(
    feature_set: str,
    file: Annotated[Path, typer.Argument(help="JSON: a row, a list of rows or {'rows': [...]}")],
    as_json: JsonOpt = False,
) -> None:
    """Push rows to the online and offline stores (newest event time wins online)."""
    rows = _rows(file)
    with store() as client:
        result = client.push(feature_set, rows)
    if as_json:
        emit(result, True)
    else:
        console.print(f"pushed {result.rows_written} row(s), {result.online_updated} online value(s) updated")


# materialization ------------------------------------------------------------------------------
@features_app.command("materialize")
def materialize(
    feature_set: str,
    start: Annotated[str | None, typer.Option(help="event-time start (ISO 8601 or epoch seconds)")] = None,
    end: Annotated[str | None, typer.Option(help="event-time end (default: now)")] = None,
    incremental: Annotated[bool, typer.Option(help="from the last materialized point")] = False,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the job until it ends")] = True,
    timeout: Annotated[float | None, typer.Option(help="give up waiting after this many seconds")] = None,
    poll: Annotated[float, typer.Option("--poll", help="seconds between progress checks")] = 0.5,
    as_json: JsonOpt = False,
) -> None:
    """Copy the newest offline values into the online store, with a progress bar of entities."""
    with store() as client:
        job = client.materialize(feature_set, start=start, end=end, incremental=incremental)
        if wait:
            job = _follow(client, job, timeout, poll)
    if as_json:
        emit(job, True)
    else:
        console.print(f"job {job.id} {job.status}: {job.rows_done}/{job.rows_total} entities")
    if job.status == "FAILED":
        raise fail(f"job {job.id} failed: {job.error}", 1)


def _follow(
    client: FeatureStoreClient, job: MaterializationJob, timeout: float | None, poll: float
) -> MaterializationJob:
    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(f"materialize {job.feature_set} (job {job.id})", total=None)

        def show(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total or None)

        try:
            return client.wait_for_job(
                job.id, timeout=timeout, poll_interval=poll, progress=show, raise_on_failure=False
            )
        except TimeoutError as exc:
            raise fail(f"{exc} (see `mlops features jobs get {job.id}`)", 1) from None


def _jobs_table(jobs: list[MaterializationJob]) -> Table:
    table = Table("id", "feature set", "status", "progress", "start", "end", "error")
    for j in jobs:
        progress = f"{j.rows_done}/{j.rows_total} ({j.percent:g}%)"
        span = (j.start or "-", j.end or "-")
        table.add_row(str(j.id), j.feature_set, j.status, progress, *span, j.error or "")
    return table


@jobs_app.command("list")
def list_jobs(
    feature_set: Annotated[str | None, typer.Option("--set", help="only this feature set's")] = None,
    status: Annotated[str | None, typer.Option(help="PENDING, RUNNING, SUCCEEDED or FAILED")] = None,
    limit: Annotated[int, typer.Option("--max", help="at most this many (newest first)")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Materialization jobs, newest first."""
    with store() as client:
        found = client.list_jobs(feature_set=feature_set, status=status, limit=limit).items
    emit(found, as_json, _jobs_table(found))


@jobs_app.command("get")
def get_job(job_id: int, as_json: JsonOpt = False) -> None:
    """A materialization job's status and progress."""
    with store() as client:
        job = client.get_job(job_id)
    emit(job, as_json, _jobs_table([job]))


# serving --------------------------------------------------------------------------------------
def _refs(spec: list[str]) -> tuple[list[str], str | None]:
    """`set:a,b` → (["set:a", "b"], "set"): bare names after the first are looked up in its set."""
    refs = [r.strip() for item in spec for r in item.split(",") if r.strip()]
    first = next((r for r in refs if ":" in r), None)
    return refs, first.split(":", 1)[0] if first else None


def _online_table(result: OnlineFeatures) -> Table:
    table = Table("entity", *result.features)
    for r in result.results:
        cells = (
            _cell(r.values.get(f)) if r.statuses.get(f) == "PRESENT" else str(r.statuses.get(f, "MISSING"))
            for f in result.features
        )
        entity = r.entity if isinstance(r.entity, str) else json.dumps(r.entity)
        table.add_row(entity, *cells)
    return table


@features_app.command("serve")
def serve(
    features: Annotated[list[str], typer.Argument(help="set:feature,... (bare names after set: are in it)")],
    entity: Annotated[list[str], typer.Option("--entity", "-e", help="join-key value (repeatable)")],
    as_json: JsonOpt = False,
) -> None:
    """Online values (MISSING or EXPIRED where there is none) of a few entities."""
    refs, feature_set = _refs(features)
    with store() as client:
        result = client.serve(entity, refs, feature_set=feature_set)
    emit(result, as_json, _online_table(result))


@features_app.command("historical")
def historical(
    entities: Annotated[Path, typer.Argument(help=".parquet or .csv with join keys and event_timestamp")],
    feature: Annotated[list[str], typer.Option("--feature", "-f", help="set:feature (repeatable)")] = [],
    feature_service: Annotated[str | None, typer.Option("--feature-service")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write Parquet here")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Point-in-time-correct training data for the entity rows of a file."""
    if not entities.is_file():
        raise fail(f"{entities} does not exist")
    refs = [r for item in feature for r in item.split(",") if r.strip()] or None
    if (refs is None) == (feature_service is None):
        raise fail("give --feature (repeatable) or --feature-service")
    with store() as client:
        if output is not None:
            client.historical(entities, features=refs, feature_service=feature_service, out_path=output)
            console.print(f"saved {output}")
            return
        result = client.historical(entities, features=refs, feature_service=feature_service)
    table = Table(*result.columns)
    for row in result.rows:
        table.add_row(*(_cell(v) for v in row))
    emit(result.records(), as_json, table)


@features_app.command("stats")
def stats(
    feature_set: str,
    version: Annotated[int | None, typer.Option(help="schema version (default: latest)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Per-feature statistics of every row ingested or pushed."""
    with store() as client:
        result = client.statistics(feature_set, version=version)
    table = Table("feature", "type", "count", "nulls", "mean", "std", "min", "max", "top")
    for name, s in result.features.items():
        top = ", ".join(f"{t['value']} ({t['count']})" for t in s.get("top", [])[:5])
        numbers = (_cell(s.get(k)) for k in ("mean", "std", "min", "max"))
        table.add_row(name, s.get("type", "-"), str(s.get("count", 0)), str(s.get("nulls", 0)), *numbers, top)
    emit(result, as_json, table)
