"""`mlops ab ...`: A/B testing from a terminal (registered on the `mlops` app in cli.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops_client.ab_models import AbExperiment, ExperimentResults, MetricResult
from mlops_client.ab_testing import AbTestingClient
from mlops_client.cli_common import JsonOpt, client_for, console, emit, fail

ab_app = typer.Typer(help="A/B testing: experiments, routing, results, promotion.", no_args_is_help=True)


@contextmanager
def ab() -> Iterator[AbTestingClient]:
    """A client configured by `mlops --ab-testing-url/--api-key`; service errors exit 1."""
    with client_for(AbTestingClient, "ab_testing_url") as client:
        yield client


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise fail(f"could not read {path}: {exc}") from None


def _num(value: float | None, fmt: str = ".4g") -> str:
    return "-" if value is None else format(value, fmt)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.2f}%"


def _experiments_table(found: list[AbExperiment]) -> Table:
    table = Table("key", "status", "mode", "phase", "variants", "primary metric", "created")
    for e in found:
        variants = ", ".join(f"{v.name} {v.weight:g}" for v in e.variants)
        table.add_row(
            e.key,
            e.status,
            e.mode,
            str(e.phase),
            variants,
            e.primary_metric or "-",
            e.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


@ab_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="JSON definition: key, variants, metrics, ... (see API.md)")],
    start: Annotated[bool, typer.Option("--start", help="start it right away")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an experiment (a draft unless --start)."""
    spec = _read_json(file)
    if not isinstance(spec, dict):
        raise fail(f"{file}: give a JSON object")
    with ab() as client:
        created = client.create_experiment(spec)
        if start:
            created = client.start(created.key)
    if as_json:
        emit(created, True)
    else:
        console.print(
            f"created experiment {created.key} ({created.status}, {len(created.variants)} variants)"
        )


@ab_app.command("list")
def list_experiments(
    status: Annotated[str | None, typer.Option(help="draft, running, paused, stopped or archived")] = None,
    mode: Annotated[str | None, typer.Option(help="ab, bandit or canary")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Experiments (all pages), newest first."""
    with ab() as client:
        found = list(client.iter_experiments(status=status, mode=mode))
    emit(found, as_json, _experiments_table(found))


@ab_app.command("show")
def show(key: str, as_json: JsonOpt = False) -> None:
    """An experiment: status, variants, metrics."""
    with ab() as client:
        e = client.get_experiment(key)
    if as_json:
        emit(e, True)
        return
    console.print(
        f"[bold]{e.key}[/bold] {e.name!r}: {e.status}, mode {e.mode}, phase {e.phase}, "
        f"coverage {e.coverage:g}, seed {e.seed}"
        + (
            f", namespace {e.namespace.name} [{e.namespace.range[0]:g}, {e.namespace.range[1]:g})"
            if e.namespace
            else ""
        )
    )
    if e.hypothesis:
        console.print(f"hypothesis: {e.hypothesis}")
    variants = Table("variant", "weight", "model version", "control")
    for v in e.variants:
        variants.add_row(
            v.name, f"{v.weight:g}", v.model_version or "-", "yes" if v.name == e.control else ""
        )
    console.print(variants)
    if e.metrics:
        metrics = Table("metric", "type", "direction", "role")
        for m in e.metrics:
            role = (
                "primary"
                if m.name == e.primary_metric
                else "guardrail"
                if m.name in e.guardrail_metrics
                else ""
            )
            metrics.add_row(m.name, m.type, m.direction, role)
        console.print(metrics)


def _lifecycle(action: str, key: str, as_json: bool) -> None:
    with ab() as client:
        e = getattr(client, action)(key)
    if as_json:
        emit(e, True)
    else:
        console.print(f"{e.key} is {e.status} (phase {e.phase})")


@ab_app.command("start")
def start(key: str, as_json: JsonOpt = False) -> None:
    """Start (or resume) an experiment: users are routed by hash."""
    _lifecycle("start", key, as_json)


@ab_app.command("pause")
def pause(key: str, as_json: JsonOpt = False) -> None:
    """Pause an experiment: everyone gets the control until it starts again."""
    _lifecycle("pause", key, as_json)


@ab_app.command("stop")
def stop(key: str, as_json: JsonOpt = False) -> None:
    """Stop an experiment for good: everyone gets the control."""
    _lifecycle("stop", key, as_json)


@ab_app.command("archive")
def archive(key: str, as_json: JsonOpt = False) -> None:
    """Archive a stopped (or draft) experiment."""
    _lifecycle("archive", key, as_json)


@ab_app.command("route")
def route(key: str, user: str, as_json: JsonOpt = False) -> None:
    """Which variant and model version a user gets, and why."""
    with ab() as client:
        a = client.route(key, user)
    table = Table("user", "variant", "model version", "in experiment", "reason", "hash", "phase")
    table.add_row(
        a.user_id,
        a.variant or "-",
        a.model_version or "-",
        "yes" if a.in_experiment else "no",
        a.reason,
        _num(a.hash),
        str(a.phase),
    )
    emit(a.to_dict(), as_json, table)


def _ci(interval: list[float | None] | None, relative: bool) -> str:
    if not interval or len(interval) != 2 or interval[0] is None or interval[1] is None:
        return "-"
    if relative:
        return f"[{interval[0] * 100:+.2f}%, {interval[1] * 100:+.2f}%]"
    return f"[{interval[0]:+.4g}, {interval[1]:+.4g}]"


def _metric_table(m: MetricResult, control: str) -> Table:
    role = " primary" if m.primary else " guardrail" if m.guardrail else ""
    title = f"{m.name} ({m.type}{role}, {m.direction} is better)"
    table = Table("variant", "n", "mean", "lift", "95% CI", "p", "chance to win", title=title)
    first = next((c for c in m.comparisons if c.control is not None), None)
    if first is not None and first.control is not None:
        table.add_row(control, f"{first.control.n:g}", _num(first.control.mean), "", "", "", "")
    for c in m.comparisons:
        if c.error is not None or c.treatment is None:
            table.add_row(c.variant, "-", "-", "-", "-", "-", "-", end_section=False)
            continue
        # relative lift and its interval when there is one, else absolute
        relative = c.rel_lift is not None
        lift = _pct(c.rel_lift) if relative else _num(c.abs_lift, "+.4g")
        p = c.adjusted_p_value if c.adjusted_p_value is not None else c.p_value
        star = (
            "*" if (c.significant_adjusted if c.significant_adjusted is not None else c.significant) else ""
        )
        win = c.chance_to_win
        table.add_row(
            c.variant,
            f"{c.treatment.n:g}",
            _num(c.treatment.mean),
            lift,
            _ci(c.rel_lift_ci if relative else c.abs_lift_ci, relative),
            _num(p, ".3g") + star,
            "-" if win is None else f"{win * 100:.1f}%",
        )
    return table


@ab_app.command("results")
def results(
    key: str,
    phase: Annotated[int | None, typer.Option(help="default: the current phase")] = None,
    method: Annotated[
        str | None, typer.Option(help="multiple-testing correction: holm (default) or bh")
    ] = None,
    sequential: Annotated[
        bool | None, typer.Option("--sequential/--fixed", help="with always-valid p-values (default) or not")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The analysis: one table per metric (variant, n, mean, lift, CI, p, chance to win); p is
    corrected across metrics x variants, * marks significance."""
    with ab() as client:
        found: ExperimentResults = client.results(key, phase=phase, method=method, sequential=sequential)
    if as_json:
        emit(found, True)
        return
    exposures = ", ".join(f"{v.name} {v.exposures}" for v in found.variants)
    console.print(
        f"[bold]{found.experiment}[/bold] {found.status or ''} phase {found.phase}: exposed {exposures}"
    )
    for m in found.metrics:
        console.print(_metric_table(m, found.control))
        for c in m.comparisons:
            if c.error is not None:
                console.print(f"  {c.variant}: {c.error}")
    srm = found.sample_ratio_mismatch
    if srm:
        p = _num(srm.get("p_value"), ".3g")
        if found.srm_flagged:
            console.print(f"[red]sample ratio mismatch[/red] (p = {p}): do not trust these results")
        else:
            console.print(f"no sample ratio mismatch (p = {p})")


@ab_app.command("promote")
def promote(
    key: str,
    variant: Annotated[str | None, typer.Option(help="default: the winner on the primary metric")] = None,
    alias: Annotated[str, typer.Option(help="registry alias to move")] = "production",
    test: Annotated[
        str | None, typer.Option(help="p-value picking the winner: sequential (default) or fixed")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Point the model's registry alias at the winning variant's model version."""
    with ab() as client:
        decision = client.promote(key, variant, alias=alias, test=test)
    if as_json:
        emit(decision, True)
        return
    details = decision.details
    move = details.get("registry") or {}
    chosen = details.get("variant", variant)
    console.print(
        f"promoted {chosen} of {key} ({details.get('chosen_by', 'request')}): "
        f"{move.get('model', '?')}@{move.get('alias', alias)} → {move.get('to', '?')}"
    )


@ab_app.command("decisions")
def decisions(key: str, as_json: JsonOpt = False) -> None:
    """Bandit re-weightings, canary advances/rollbacks and promotions, with their evidence."""
    with ab() as client:
        found = client.decisions(key)
    table = Table("when", "kind", "phase", "details")
    for d in found:
        when = d.at.strftime("%Y-%m-%d %H:%M:%S") if d.at else "-"
        table.add_row(when, d.kind, str(d.phase or "-"), json.dumps(d.details)[:200])
    emit(found, as_json, table)
