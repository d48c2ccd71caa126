"""The arithmetic of folding, by columns (numpy): each user's contribution to a metric's 10
per-variant sums, and the sums of those contributions by (phase, variant, metric).

Per-user value of a metric: binary — 1 if any event had a positive value, else 0; continuous —
the sum of the user's values (``aggregation: "mean"``: their mean); ratio — the user's summed
numerator and denominator component metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Key = tuple[int, str, str]  # (phase, component metric, user)
StatKey = tuple[int, str, str]  # (phase, variant, metric)

NO_ROW = (0.0, 0, None)  # a user without an aggregate: contributes nothing


def user_values(metric: dict[str, Any], total: np.ndarray, events: np.ndarray) -> np.ndarray:
    """Each user's value of a binary or continuous metric from their summed values and event
    count: binary 1 if the sum is positive, else 0; continuous the sum (``aggregation: "mean"``:
    the mean, for users with events)."""
    if metric["type"] == "binary":
        return (total > 0).astype(np.float64)
    if metric.get("aggregation") == "mean":
        means: np.ndarray = np.divide(total, events, out=total.astype(np.float64), where=events > 0)
        return means
    return total


def mean_columns(metric: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    """Per user, the contribution of a binary or continuous metric to the 10 sums, from columns
    (total, events, covariate (NaN: none)); a user without events counts only for zero-filled
    metrics (as a 0 with n unchanged)."""
    total, events, x = rows[:, 0], rows[:, 1], rows[:, 2]
    has = events > 0
    y = user_values(metric, total, events)
    counted = has | bool(metric.get("zero_fill"))
    with_x = counted & ~np.isnan(x)
    x0 = np.where(with_x, x, 0.0)
    y = np.where(counted, y, 0.0)
    out = np.zeros((len(rows), 10))
    out[:, 0] = has
    out[:, 1] = y
    out[:, 2] = y * y
    out[:, 3] = with_x
    out[:, 4] = x0
    out[:, 5] = x0 * x0
    out[:, 6] = x0 * y
    return out


def ratio_columns(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Per user, a ratio metric's contribution from its numerator's and denominator's (total,
    events) columns: (1, a, a², 0, 0, 0, 0, b, b², ab) once either has an event."""
    counted = (num[:, 1] > 0) | (den[:, 1] > 0)
    a = np.where(counted, num[:, 0], 0.0)
    b = np.where(counted, den[:, 0], 0.0)
    out = np.zeros((len(num), 10))
    out[:, 0] = counted
    out[:, 1] = a
    out[:, 2] = a * a
    out[:, 7] = b
    out[:, 8] = b * b
    out[:, 9] = a * b
    return out


def ratio_change(
    num: str, den: str, pairs: list[tuple[int, str]], new: dict[Key, list[Any]], old: dict[Key, list[Any]]
) -> np.ndarray:
    """The change of a ratio metric's contribution for (phase, user) pairs whose parts changed."""

    def current(key: Key) -> list[Any] | None:
        return new.get(key) or old.get(key)

    def part(name: str, pick: Callable[[Key], list[Any] | None]) -> np.ndarray:
        return columns([(r[0], r[1], None) if (r := pick((p, name, u))) else NO_ROW for p, u in pairs])

    change: np.ndarray = ratio_columns(part(num, current), part(den, current)) - ratio_columns(
        part(num, old.get), part(den, old.get)
    )
    return change


def sum_by(groups: list[StatKey], values: np.ndarray, into: dict[StatKey, list[float]]) -> None:
    """Add each row of `values` (10 columns) to its group's sums in `into`."""
    codes: dict[StatKey, int] = {}
    index = np.fromiter((codes.setdefault(g, len(codes)) for g in groups), dtype=np.int64, count=len(groups))
    sums = np.stack(
        [np.bincount(index, weights=values[:, k], minlength=len(codes)) for k in range(10)], axis=1
    )
    for group, code in codes.items():
        target = into.setdefault(group, [0.0] * 10)
        for k in range(10):
            target[k] += float(sums[code, k])


def columns(rows: list[tuple[float, int, float | None]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, 3))
