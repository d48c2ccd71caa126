"""`mlops monitor ...`: reference profiles, drift, performance, the HTML report, alerts and config."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from mlops_client.cli_common import JsonOpt, bytes_bar, client_for, console, emit, fail
from mlops_client.monitoring import MonitoringClient
from mlops_client.monitoring_data import KINDS
from mlops_client.monitoring_models import DriftReport, PerformanceReport, ReferenceSummary

monitor_app = typer.Typer(
    help="Model monitoring: reference profiles, drift, performance, report, alerts.", no_args_is_help=True
)

VersionOpt = Annotated[
    str | None,
    typer.Option("--version", "-v", help="version, latest or @alias; default: of the latest prediction"),
]
StartOpt = Annotated[str | None, typer.Option("--start", help="window start, ISO 8601 (inclusive)")]
EndOpt = Annotated[str | None, typer.Option("--end", help="window end, ISO 8601 (exclusive)")]
LastOpt = Annotated[str | None, typer.Option("--last", help="window length before --end or now: 30m, 1h, 7d")]
LastNOpt = Annotated[int | None, typer.Option("--last-n", help="only the most recent n predictions")]


TypeOpt = Annotated[
    list[str], typer.Option("--type", help="column:kind, kind numeric, categorical or boolean (repeatable)")
]


@contextmanager
def monitoring() -> Iterator[MonitoringClient]:
    with client_for(MonitoringClient, "url") as client:
        yield client


def _number(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _types(items: list[str]) -> dict[str, str]:
    types: dict[str, str] = {}
    for item in items:
        name, sep, kind = item.rpartition(":")
        if not sep or not name or kind not in KINDS:
            raise fail(f"--type {item!r} must look like column:kind, kind one of {', '.join(KINDS)}")
        types[name] = kind
    return types


def _show_reference(summary: ReferenceSummary, as_json: bool) -> None:
    table = Table("column", "kind", "count", "missing", "sampled")
    for c in summary.columns:
        table.add_row(c.name, c.kind, str(c.count), str(c.missing), "yes" if c.sampled else "")
    emit(summary, as_json, table)
    if not as_json:
        sampled = " (some columns sampled)" if summary.sampled else ""
        console.print(f"{summary.name} {summary.version}: {summary.rows} rows{sampled}", highlight=False)


@monitor_app.command("reference")
def reference(
    model: str,
    version: str,
    file: Annotated[
        Path | None,
        typer.Argument(help="CSV, JSON, JSONL or Parquet file to profile; without it, show the stored one"),
    ] = None,
    type_: TypeOpt = [],
    as_json: JsonOpt = False,
) -> None:
    """Store a version's reference profile from a file (streamed, with a progress bar), or show it."""
    types = _types(type_)
    if file is None:
        with monitoring() as client:
            stored = client.get_reference(model, version)
        _show_reference(stored, as_json)
        return
    if not file.is_file():
        raise fail(f"{file} is not a file")
    with monitoring() as client, bytes_bar(f"upload {file.name}") as progress:
        summary = client.set_reference(model, version, file, types=types, progress=progress)
    _show_reference(summary, as_json)


def _drift_table(report: DriftReport) -> Table:
    table = Table(
        Column("feature", no_wrap=True), "method", "statistic", "p-value", "threshold", "drifted", "n"
    )
    for f in report.features:
        drifted = "[red]yes[/red]" if f.drifted else "no"
        table.add_row(
            f.feature,
            f.method or "-",
            _number(f.statistic),
            _number(f.p_value),
            _number(f.threshold),
            drifted if f.status == "ok" else f.status.replace("_", " "),
            _number(f.current_count),
        )
    return table


def _window_line(count: int, truncated: bool) -> str:
    more = " (the most recent; more were logged)" if truncated else ""
    return f"{count} predictions in the window{more}"


@monitor_app.command("drift")
def drift(
    model: str,
    version: VersionOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    last: LastOpt = None,
    last_n: LastNOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift of a window of logged predictions against the version's reference profile."""
    with monitoring() as client:
        report = client.drift(model, version=version, start=start, end=end, last=last, last_n=last_n)
    if as_json:
        emit(report, True)
        return
    console.print(_drift_table(report))
    verdict = "[red]DRIFTED[/red]" if report.drifted else "no drift"
    if report.dataset.get("status") == "insufficient_data":
        verdict = "insufficient data"
    features = ", ".join(report.drifted_features) or "none"
    console.print(f"{model} {report.version}: dataset {verdict} (drifted features: {features})")
    console.print(_window_line(report.window.count, report.window.truncated))


def _performance_table(report: PerformanceReport) -> Table:
    table = Table("metric", "live", "interval", "n", "registered", "difference")
    for name, m in report.performance.get("metrics", {}).items():
        interval = m.get("interval") or {}
        low, high = interval.get("low"), interval.get("high")
        span = f"{_number(low)} to {_number(high)}" if low is not None and high is not None else "-"
        registered = report.registered.get(name, {})
        table.add_row(
            name,
            _number(m.get("value")) if m.get("value") is not None else f"- ({m.get('reason') or 'n/a'})",
            span,
            _number(m.get("n")),
            _number(registered.get("registered")),
            _number(registered.get("difference")),
        )
    return table


@monitor_app.command("performance")
def performance(
    model: str,
    version: VersionOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    last: LastOpt = None,
    last_n: LastNOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Live metrics of the window's labelled predictions, beside the registered metrics."""
    with monitoring() as client:
        report = client.performance(model, version=version, start=start, end=end, last=last, last_n=last_n)
    if as_json:
        emit(report, True)
        return
    console.print(_performance_table(report))
    labelled = report.performance.get("n_labelled", 0)
    window = _window_line(report.window.count, report.window.truncated)
    console.print(f"{model} {report.version}: {labelled} labelled; {window}")


@monitor_app.command("report")
def report(
    model: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file; default: stdout")] = None,
    version: VersionOpt = None,
    start: StartOpt = None,
    end: EndOpt = None,
    last: LastOpt = None,
    last_n: LastNOpt = None,
) -> None:
    """The HTML monitoring report of a window (self-contained, works offline)."""
    with monitoring() as client:
        html = client.report(model, output, version=version, start=start, end=end, last=last, last_n=last_n)
    if output is None:
        sys.stdout.write(html)
    else:
        console.print(f"saved {output}", soft_wrap=True, highlight=False)


def _evidence(evidence: dict[str, Any] | None) -> str:
    if not evidence:
        return "-"
    value = evidence.get("value")
    shown = _number(value) if value is not None else (evidence.get("reason") or "no value")
    threshold = _number(evidence.get("threshold"))
    return f"{evidence.get('metric')} = {shown} ({evidence.get('operator')} {threshold})"


def _alerts_tables(data: dict[str, Any]) -> Table:
    table = Table("rule", "severity", "state", "since", "evidence", title=f"{data.get('name')}: alert rules")
    for rule in data.get("rules") or []:
        table.add_row(
            str(rule.get("rule")),
            str(rule.get("severity")),
            str(rule.get("state")),
            str(rule.get("since") or "-")[:19],
            _evidence(rule.get("evidence")),
        )
    return table


def _history_table(data: dict[str, Any]) -> Table:
    table = Table("at", "rule", "change", "evidence", title="state changes, newest first")
    for event in data.get("history") or []:
        table.add_row(
            str(event.get("at"))[:19],
            str(event.get("rule")),
            f"{event.get('from_state')} -> {event.get('to_state')}",
            _evidence(event.get("evidence")),
        )
    return table


@monitor_app.command("alerts")
def alerts(
    model: str,
    evaluate: Annotated[bool, typer.Option("--evaluate", help="evaluate the rules now first")] = False,
    limit: Annotated[int, typer.Option("--limit", help="state changes to show")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The model's alert rules with their state and evidence, and the recent state changes."""
    with monitoring() as client:
        if evaluate:
            client.evaluate(model)
        data = client.alerts(model, limit=limit)
    if as_json:
        emit(data, True)
        return
    if not data.get("rules"):
        console.print(f"{model}: no alert rules (set them with `mlops monitor config {model} --set FILE`)")
        return
    console.print(_alerts_tables(data))
    if data.get("history"):
        console.print(_history_table(data))


@monitor_app.command("config")
def config(
    model: str,
    file: Annotated[Path | None, typer.Option("--set", help="a JSON file to replace the config")] = None,
) -> None:
    """Show the model's monitoring config (JSON), or replace it with --set FILE."""
    body: dict[str, Any] | None = None
    if file is not None:
        try:
            body = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise fail(f"{file}: {exc}") from None
        if not isinstance(body, dict):
            raise fail(f"{file} must hold a JSON object")
    with monitoring() as client:
        result = client.get_config(model) if body is None else client.set_config(model, body)
    emit(result, True)
