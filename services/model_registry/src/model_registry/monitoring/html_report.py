"""The monitoring report as one self-contained HTML page: inline CSS and inline SVG charts, no
script and nothing fetched (a Content-Security-Policy of default-src 'none' says so). Framework-free;
every user-supplied text (model, version, feature and category names, labels) is escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from model_registry.monitoring import drift as st
from model_registry.monitoring.distributions import Distribution, distribution
from model_registry.monitoring.performance import PerformanceReport
from model_registry.monitoring.profile import Profile
from model_registry.monitoring.report import INSUFFICIENT
from model_registry.monitoring.svg import Point, Series, bar_chart, line_chart
from model_registry.monitoring.timeline import Bucket

OUTPUTS = ("prediction", "probability")
POLICY = "default-src 'none'; style-src 'unsafe-inline'"  # the page loads nothing and runs nothing
REFERENCE_COLOR, CURRENT_COLOR = "#9ca3af", "#2563eb"
SHARE_METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc"}  # plotted within [0, 1]
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:1180px;margin:0 auto;padding:20px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px}h3{font-size:15px;margin:0}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:14px 16px;margin-bottom:14px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px}
.grid .card{margin:0}.head{display:flex;justify-content:space-between;gap:8px;align-items:baseline}
.badge{display:inline-block;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600}
.drifted{background:#fee2e2;color:#991b1b}.ok{background:#dcfce7;color:#166534}
.insufficient{background:#e5e7eb;color:#374151}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f0f0f0;vertical-align:top}
th{color:#6b7280;font-weight:500}.num{font-variant-numeric:tabular-nums;text-align:right}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:10px 0 0;font-size:13px}
dt{color:#6b7280}dd{margin:0}.muted{color:#6b7280;font-size:12px}.rule{font-size:13px;margin:8px 0 0}
.body{display:flex;gap:14px;flex-wrap:wrap;margin-top:8px}.body table{width:auto;flex:1}
code{background:#f3f4f6;padding:0 3px;border-radius:3px}
"""


@dataclass(frozen=True)
class ReportInput:
    name: str
    version: str
    window: Mapping[str, Any]  # start, end, last_n, count, truncated
    profile: Profile
    columns: Mapping[str, Any]  # the window's values per profile column (lists or numpy arrays)
    timestamps: Sequence[datetime]
    drift: Mapping[str, Any]  # the core's drift report
    performance: PerformanceReport
    registered: Mapping[str, Mapping[str, Any]]  # compare_with_registered
    metric: str  # the one plotted over time
    timeline: Sequence[Bucket]
    generated_at: datetime


def e(value: object) -> str:
    return escape(str(value), quote=True)


def num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def verdict(status: str, drifted: bool) -> tuple[str, str]:
    """(text, css class) of a feature's or the dataset's result."""
    if status == INSUFFICIENT:
        return "insufficient data", "insufficient"
    return ("drifted", "drifted") if drifted else ("no drift", "ok")


def badge(status: str, drifted: bool) -> str:
    text, css = verdict(status, drifted)
    return f'<span class="badge {css}">{text}</span>'


def _rule(dataset: Mapping[str, Any]) -> str:
    if dataset["status"] != "ok":
        return "No column had enough values on both sides to be compared: insufficient data, never drift."
    rules = []
    if dataset["p_value_tests"]:
        rejected = ", ".join(e(f) for f in dataset["rejected_after_holm"]) or "none"
        rules.append(
            f"Holm's procedure at &alpha; = {dataset['alpha']:g} rejects any of the "
            f"{dataset['p_value_tests']} p-value tests (rejected: {rejected})"
        )
    if dataset["distance_tests"]:
        rules.append(
            f"the share of drifted distance-method columns ({pct(dataset['distance_drifted_share'])} of "
            f"{dataset['distance_tests']}) is at least {pct(dataset['drift_share_threshold'])}"
        )
    return "Drift when " + ", or when ".join(rules) + "."


def _window_asked(window: Mapping[str, Any]) -> str:
    asked = [f"from {when(window['start'])}" if window["start"] else ""]
    asked += [f"before {when(window['end'])}" if window["end"] else ""]
    asked += [f"the last {window['last_n']} predictions" if window["last_n"] else ""]
    return " · ".join(a for a in asked if a) or "every logged prediction of the version"


def _reference(profile: Profile) -> str:
    rows = max((c.rows for c in profile.columns.values()), default=0)
    sampled = [e(c.name) for c in profile.columns.values() if c.sampled]
    if not sampled:
        return f"{rows} rows · not sampled (exact)"
    more = f" and {len(sampled) - 10} more" if len(sampled) > 10 else ""
    return f"{rows} rows · sampled: {', '.join(sampled[:10])}{more} (bins and statistics from a sample)"


def _facts(data: ReportInput) -> list[tuple[str, str]]:
    dataset, window, stamps = data.drift["dataset"], data.window, data.timestamps
    span = f" · logged {when(min(stamps))} &rarr; {when(max(stamps))}" if stamps else ""
    truncated = " (truncated to the most recent)" if window["truncated"] else ""
    drifted = ", ".join(e(f) for f in dataset["drifted_features"]) or "none"
    facts = [
        ("Window asked", _window_asked(window)),
        ("Predictions", f"{window['count']}{truncated}{span}"),
        ("Labelled", f"{data.performance.n_rows} (used for performance: {data.performance.n_labelled})"),
        ("Reference", _reference(data.profile)),
        ("Drifted features", f"{drifted} · evaluated {dataset['evaluated_features']}"),
    ]
    for key, text in (
        ("unknown_columns", "Logged, not in the reference"),
        ("missing_columns", "Not compared"),
    ):
        if data.drift[key]:
            facts.append((text, ", ".join(e(c) for c in data.drift[key])))
    return facts


def _header(data: ReportInput) -> str:
    dataset = data.drift["dataset"]
    text, _ = verdict(dataset["status"], dataset["drifted"])
    facts = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in _facts(data))
    return (
        f'<header class="card"><div class="head"><div><h1>Monitoring report: {e(data.name)}</h1>'
        f'<div class="muted">version {e(data.version)} · generated {when(data.generated_at)}</div></div>'
        f'<div id="dataset-verdict" data-verdict="{text}">'
        f"Dataset: {badge(dataset['status'], dataset['drifted'])}</div></div>"
        f'<p class="rule">{_rule(dataset)}</p><dl>{facts}</dl></header>'
    )


def _summary_table(features: Sequence[Mapping[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="#feature-{i}">{e(f["feature"])}</a></td><td>{e(f["kind"])}</td>'
        f"<td>{e(f['method'])}</td>"
        f'<td class="num">{num(f["statistic"])}</td><td class="num">{num(f["p_value"])}</td>'
        f'<td class="num">{num(f["threshold"])}</td><td class="num">{pct(f["missing_share"])}</td>'
        f"<td>{badge(f['status'], f['drifted'])}</td></tr>"
        for i, f in enumerate(features)
    )
    return (
        '<div class="card"><table id="summary"><tr><th>column</th><th>kind</th><th>method</th>'
        "<th class=num>statistic</th><th class=num>p-value</th><th class=num>threshold</th>"
        "<th class=num>missing</th><th>verdict</th></tr>"
        f"{rows}</table></div>"
    )


def _chart(name: str, dist: Distribution) -> str:
    series = [
        Series("reference", dist.reference, REFERENCE_COLOR),
        Series("current", dist.current, CURRENT_COLOR),
    ]
    label = f"{name}: reference and current shares"
    return bar_chart(dist.groups, series, label=label, edges=dist.edges, width=520)


def _result_table(f: Mapping[str, Any], dist: Distribution) -> str:
    rule = "p-value < threshold" if f["method"] in st.P_VALUE_METHODS else "statistic ≥ threshold"
    rows = [
        ("method", e(f["method"]) + (" (reference sample)" if f["reference_sampled"] else "")),
        ("statistic", num(f["statistic"])),
        ("p-value", num(f["p_value"])),
        ("threshold", f"{num(f['threshold'])} <span class=muted>drift when {rule}</span>"),
        ("values", f"reference {f['reference_count']} · current {f['current_count']}"),
        ("missing", f"reference {pct(f['reference_missing_share'])} · current {pct(f['missing_share'])}"),
    ]
    rows += [(k, f"reference {num(r)} · current {num(c)}") for k, r, c in dist.summary]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _feature_card(i: int, f: Mapping[str, Any], data: ReportInput) -> str:
    col = data.profile.columns[f["feature"]]
    dist = distribution(col, data.columns[f["feature"]])
    text, _ = verdict(f["status"], f["drifted"])
    return (
        f'<article class="card feature" id="feature-{i}" data-feature="{e(f["feature"])}" '
        f'data-verdict="{text}">'
        f'<div class="head"><h3>{e(f["feature"])} <span class="muted">{e(f["kind"])}</span></h3>'
        f'{badge(f["status"], f["drifted"])}</div><div class="body">{_chart(f["feature"], dist)}'
        f"{_result_table(f, dist)}</div></article>"
    )


def _features(data: ReportInput) -> str:
    features = list(data.drift["features"])
    indexed = list(enumerate(features))
    inputs = "".join(_feature_card(i, f, data) for i, f in indexed if f["feature"] not in OUTPUTS)
    outputs = "".join(_feature_card(i, f, data) for i, f in indexed if f["feature"] in OUTPUTS)
    if not outputs:
        outputs = '<p class="card muted">The reference has no <code>prediction</code> column.</p>'
    return (
        f"<h2>Drift</h2>{_summary_table(features)}<h2>Features</h2><div class=grid>{inputs}</div>"
        f"<h2>Model outputs</h2><div class=grid>{outputs}</div>"
    )


def _point(b: Bucket) -> Point:
    note = f"{when(b.start)}: {num(b.value)} (n={b.n})"
    return Point((b.start + (b.end - b.start) / 2).timestamp(), b.value or 0.0, b.low, b.high, note)


def _timeline_chart(data: ReportInput) -> str:
    points = [_point(b) for b in data.timeline if b.value is not None and math.isfinite(b.value)]
    if not points:
        return '<p class="muted insufficient-data">Insufficient data: no bucket has a value to plot.</p>'
    edges = [b.start for b in data.timeline] + [data.timeline[-1].end]
    step = max(1, len(edges) // 7)
    pattern = "%H:%M" if edges[-1] - edges[0] <= timedelta(days=1) else "%m-%d %H:%M"
    labels = [(t.timestamp(), t.strftime(pattern)) for t in edges[::step]]
    registered = data.registered.get(data.metric, {}).get("registered")
    return line_chart(
        points,
        label=f"{data.metric} per time bucket with its confidence interval",
        x_labels=labels,
        x_range=(edges[0].timestamp(), edges[-1].timestamp()),
        reference=registered,
        clip=(0.0, 1.0) if data.metric in SHARE_METRICS else None,
    )


def _bucket_table(buckets: Sequence[Bucket]) -> str:
    rows = "".join(
        f'<tr class="bucket"><td>{when(b.start)}</td><td>{when(b.end)}</td><td class="num">{b.n}</td>'
        f'<td class="num">{num(b.value)}</td><td class="num">{num(b.low)} &ndash; {num(b.high)}</td>'
        f'<td class="muted">{e(b.reason or "")}</td></tr>'
        for b in buckets
    )
    return (
        '<table id="buckets"><tr><th>from</th><th>to</th><th class=num>labelled</th><th class=num>value</th>'
        f"<th class=num>interval</th><th></th></tr>{rows}</table>"
    )


def _metrics_table(data: ReportInput) -> str:
    rows = ""
    for name, metric in data.performance.metrics.items():
        compared = data.registered.get(name, {})
        interval = metric.interval
        band = "—"
        if interval is not None:
            method = f"<span class=muted>{e(interval.method)}</span>"
            band = f"{num(interval.low)} &ndash; {num(interval.high)} {method}"
        within = {True: "yes", False: "no", None: "—"}[compared.get("registered_within_interval")]
        reason = f' <span class="muted">{e(metric.reason)}</span>' if metric.reason else ""
        rows += (
            f'<tr><td>{e(name)}</td><td class="num">{num(metric.value)}{reason}</td><td>{band}</td>'
            f'<td class="num">{metric.n}</td><td class="num">{num(compared.get("registered"))}</td>'
            f'<td class="num">{num(compared.get("difference"))}</td><td>{within}</td></tr>'
        )
    return (
        '<table id="metrics"><tr><th>metric</th><th class=num>live</th><th>interval</th><th class=num>n</th>'
        "<th class=num>registered</th><th class=num>difference</th><th>registered within interval</th>"
        f"</tr>{rows}</table>"
    )


def _performance(data: ReportInput) -> str:
    report = data.performance
    if report.n_labelled == 0:
        body = '<p class="insufficient-data">Insufficient data: no labelled predictions in this window.</p>'
        return f'<h2>Performance</h2><section class="card" id="performance">{body}</section>'
    classes = f" · classes {', '.join(e(c) for c in report.classes)}" if report.classes else ""
    positive = f" · positive label {e(report.positive_label)}" if report.positive_label is not None else ""
    return f"""<h2>Performance</h2><section class="card" id="performance">
<div class="muted">{e(report.task)}{classes}{positive} · {report.n_labelled} labelled predictions
(missing label {report.n_missing_label}, missing prediction {report.n_missing_prediction})</div>
<h3 style="margin-top:12px">{e(data.metric)} over time</h3>{_timeline_chart(data)}
{_bucket_table(data.timeline)}<h3 style="margin-top:16px">Whole window</h3>{_metrics_table(data)}</section>"""


def render(data: ReportInput) -> str:
    title = f"Monitoring report · {data.name} · version {data.version}"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body><main>"
        f"{_header(data)}{_features(data)}{_performance(data)}"
        '<p class="muted">Statistics and rules: MONITORING.md of the model registry.</p>'
        "</main></body></html>"
    )
