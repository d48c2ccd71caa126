"""Performance over time: a window's labelled predictions cut into equal time buckets, one metric
per bucket with its interval (numpy only; the metrics are `compute_performance`'s)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from model_registry.monitoring.performance import (
    PerformanceReport,
    compare_with_registered,
    compute_performance,
)

MIN_BUCKET_ROWS = 30  # fewer labelled rows per bucket on average and the buckets get wider
MAX_BUCKETS = 12
PROBABILITY_METRICS = frozenset({"roc_auc", "log_loss"})
_MINUTE, _HOUR, _DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
NICE_WIDTHS = [timedelta(seconds=s) for s in (1, 2, 5, 10, 15, 30)]
NICE_WIDTHS += [_MINUTE * m for m in (1, 2, 5, 10, 15, 30)] + [_HOUR * h for h in (1, 2, 3, 6, 12)]
NICE_WIDTHS += [_DAY * d for d in (1, 2, 7, 14, 30, 91, 182, 365)]


@dataclass(frozen=True)
class Bucket:
    start: datetime
    end: datetime
    n: int
    value: float | None
    low: float | None
    high: float | None
    reason: str | None


def main_metric(report: PerformanceReport, registered: Mapping[str, Any]) -> str:
    """The first metric (in the report's order) that has a value and a registered counterpart;
    else the first with a value; else the first."""
    compared = compare_with_registered(report, registered)
    names = list(report.metrics)
    valued = [n for n in names if report.metrics[n].value is not None]
    beside = [n for n in valued if compared[n]["registered"] is not None]
    return (beside or valued or names)[0]


def bucket_count(rows: int) -> int:
    return max(1, min(MAX_BUCKETS, rows // MIN_BUCKET_ROWS))


def _width(span: timedelta, count: int) -> timedelta:
    """The smallest round bucket width that cuts `span` into at most `count` buckets."""
    wanted = span / count
    return next((w for w in NICE_WIDTHS if w >= wanted), wanted)


def _edges(timestamps: Sequence[datetime], count: int) -> list[datetime]:
    """Round bucket edges (multiples of the width since the epoch) covering every timestamp."""
    first, last = min(timestamps), max(timestamps)
    width = _width(last - first, count) if last > first else timedelta(seconds=1)
    epoch = datetime(1970, 1, 1, tzinfo=first.tzinfo)
    edge = epoch + width * ((first - epoch) // width)
    edges = [edge]
    while edges[-1] <= last:
        edges.append(edges[-1] + width)
    return edges


def _positions(timestamps: Sequence[datetime], edges: list[datetime]) -> list[list[int]]:
    """Row indexes per bucket [edge i, edge i+1)."""
    first, width = edges[0], edges[1] - edges[0]
    rows: list[list[int]] = [[] for _ in range(len(edges) - 1)]
    for i, moment in enumerate(timestamps):
        rows[(moment - first) // width].append(i)
    return rows


def _pick(values: Sequence[Any] | None, index: list[int]) -> list[Any] | None:
    return None if values is None else [values[i] for i in index]


def performance_over_time(
    timestamps: Sequence[datetime],
    predictions: Sequence[Any],
    labels: Sequence[Any],
    probabilities: Sequence[Any] | None,
    overall: PerformanceReport,
    metric: str,
    buckets: int | None = None,
) -> list[Bucket]:
    """`metric` per time bucket, computed as `overall` was (same task, classes, positive label)."""
    if not timestamps:
        return []
    edges = _edges(timestamps, buckets or bucket_count(len(timestamps)))
    options: dict[str, Any] = {"task": overall.task}
    if overall.task == "classification":
        options |= {"classes": overall.classes or None, "positive_label": overall.positive_label}
    if metric not in PROBABILITY_METRICS:
        probabilities = None  # the other metrics do not read them (and log loss is a bootstrap)
    out = []
    for b, index in enumerate(_positions(timestamps, edges)):
        if not index:
            out.append(Bucket(edges[b], edges[b + 1], 0, None, None, None, "no labelled predictions"))
            continue
        report = compute_performance(
            [predictions[i] for i in index],
            [labels[i] for i in index],
            _pick(probabilities, index),
            **options,
        )
        result = report.metrics[metric]
        low, high = (result.interval.low, result.interval.high) if result.interval else (None, None)
        out.append(Bucket(edges[b], edges[b + 1], len(index), result.value, low, high, result.reason))
    return out
