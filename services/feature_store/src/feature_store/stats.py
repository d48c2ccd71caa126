"""Feature statistics from mergeable state, kept per feature-set version and feature.

Each ingestion (and push) turns its batch into a state, merges it into the stored one and
rewrites the summary, in the writer's transaction:

- numbers (int, float, timestamp): count, nulls, mean and M2 merged with Chan's formula (so the
  mean and the sample standard deviation, ddof=1, are exact), min, max, and a uniform sample of
  at most SAMPLE_SIZE values (exact while the feature has fewer values) for the quantiles
  (p5 p25 p50 p75 p95, linear interpolation as numpy's default) and a 10-bin histogram;
- strings and bools: count, nulls and category counts (the MAX_CATEGORIES most frequent are
  kept; the rest add up in `other`), shown as the top TOP_CATEGORIES;
- lists: count, nulls and the mean length.

`nulls` counts missing values and, for floats, NaN and infinities (left out of the moments).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from mlops_kit.audit import utcnow
from sqlalchemy import select
from sqlalchemy.orm import Session

from feature_store.registry.views import FeatureSetView
from feature_store.tables import FeatureStatistics
from feature_store.types import from_micros, iso

SAMPLE_SIZE = 1024
MAX_CATEGORIES = 1000
TOP_CATEGORIES = 10
BINS = 10
QUANTILES = {"p5": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
NUMERIC = frozenset({"int", "float", "timestamp"})
CATEGORICAL = frozenset({"string", "bool"})


def kind(type_: str) -> str:
    if type_ in NUMERIC:
        return "numeric"
    return "categorical" if type_ in CATEGORICAL else "list"


def empty_state(type_: str) -> dict[str, Any]:
    return batch_state([], type_)


def batch_state(values: Sequence[Any], type_: str) -> dict[str, Any]:
    """The state of one batch of stored values (None = missing)."""
    k = kind(type_)
    if k == "numeric":
        return _numeric_state(values)
    present = [v for v in values if v is not None]
    nulls = len(values) - len(present)
    if k == "categorical":
        counts = Counter(_category(v) for v in present)
        state = {"count": len(present), "nulls": nulls, "categories": dict(counts), "other": 0}
        return _cap(state)
    return {"count": len(present), "nulls": nulls, "length_sum": sum(len(v) for v in present)}


def _numeric_state(values: Sequence[Any]) -> dict[str, Any]:
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(xs)
    mean = math.fsum(xs) / n if n else 0.0
    m2 = math.fsum((x - mean) ** 2 for x in xs) if n else 0.0
    sample = xs if n <= SAMPLE_SIZE else random.Random(n).sample(xs, SAMPLE_SIZE)
    return {
        "count": n,
        "nulls": len(values) - n,
        "mean": mean,
        "m2": m2,
        "min": min(xs) if n else None,
        "max": max(xs) if n else None,
        "sample": sample,
    }


def _category(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cap(state: dict[str, Any]) -> dict[str, Any]:
    categories: dict[str, int] = state["categories"]
    if len(categories) > MAX_CATEGORIES:
        kept = dict(Counter(categories).most_common(MAX_CATEGORIES))
        state["other"] += sum(categories.values()) - sum(kept.values())
        state["categories"] = kept
    return state


def merge(a: Mapping[str, Any], b: Mapping[str, Any], type_: str) -> dict[str, Any]:
    """The state of both batches together (order does not matter beyond the sample's draw)."""
    k = kind(type_)
    if k == "numeric":
        return _merge_numeric(a, b)
    count, nulls = a["count"] + b["count"], a["nulls"] + b["nulls"]
    if k == "categorical":
        categories = Counter(a["categories"])
        categories.update(b["categories"])
        return _cap(
            {"count": count, "nulls": nulls, "categories": dict(categories), "other": a["other"] + b["other"]}
        )
    return {"count": count, "nulls": nulls, "length_sum": a["length_sum"] + b["length_sum"]}


def _merge_numeric(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    na, nb = a["count"], b["count"]
    if na == 0 or nb == 0:
        out = dict(b if na == 0 else a)
        out["nulls"] = a["nulls"] + b["nulls"]
        return out
    n = na + nb
    delta = b["mean"] - a["mean"]
    return {
        "count": n,
        "nulls": a["nulls"] + b["nulls"],
        "mean": a["mean"] + delta * nb / n,
        "m2": a["m2"] + b["m2"] + delta * delta * na * nb / n,
        "min": min(a["min"], b["min"]),
        "max": max(a["max"], b["max"]),
        "sample": _merge_samples(a["sample"], na, b["sample"], nb),
    }


def _merge_samples(sa: list[float], na: int, sb: list[float], nb: int) -> list[float]:
    """Two uniform samples of populations na and nb as one uniform sample of na + nb."""
    if len(sa) + len(sb) <= SAMPLE_SIZE:
        return [*sa, *sb]
    rng = random.Random(na * 1_000_003 + nb)
    take_a = min(len(sa), round(SAMPLE_SIZE * na / (na + nb)))
    take_b = min(len(sb), SAMPLE_SIZE - take_a)
    return rng.sample(sa, take_a) + rng.sample(sb, take_b)


def quantile(sorted_xs: Sequence[float], q: float) -> float:
    pos = q * (len(sorted_xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def summarize(state: Mapping[str, Any], type_: str) -> dict[str, Any]:
    """What the API shows of a state."""
    out: dict[str, Any] = {"type": type_, "count": state["count"], "nulls": state["nulls"]}
    k = kind(type_)
    if k == "categorical":
        top = Counter(state["categories"]).most_common(TOP_CATEGORIES)
        out["distinct"] = len(state["categories"])
        out["distinct_is_lower_bound"] = state["other"] > 0
        out["top"] = [{"value": v, "count": c} for v, c in top]
        return out
    if k == "list":
        out["mean_length"] = state["length_sum"] / state["count"] if state["count"] else None
        return out
    if not state["count"]:
        return out
    out |= _numeric_summary(state)
    if type_ == "timestamp":
        out = _as_times(out)
    return out


def _numeric_summary(state: Mapping[str, Any]) -> dict[str, Any]:
    n = state["count"]
    xs = sorted(state["sample"])
    lo, hi = state["min"], state["max"]
    width = (hi - lo) / BINS
    counts = [0] * BINS
    for x in xs:
        counts[min(int((x - lo) / width), BINS - 1) if width else 0] += 1
    scale = n / len(xs)
    return {
        "mean": state["mean"],
        "std": math.sqrt(state["m2"] / (n - 1)) if n > 1 else None,
        "min": lo,
        "max": hi,
        "quantiles": {name: quantile(xs, q) for name, q in QUANTILES.items()},
        "quantiles_exact": len(xs) == n,
        "histogram": {
            "edges": [lo + width * i for i in range(BINS + 1)],
            "counts": [round(c * scale) for c in counts],
        },
    }


def _as_times(out: dict[str, Any]) -> dict[str, Any]:
    """Timestamps: positions as ISO 8601, the spread in seconds."""

    def iso(us: float) -> str:
        return from_micros(round(us))

    out["mean"], out["min"], out["max"] = iso(out["mean"]), iso(out["min"]), iso(out["max"])
    out["std_seconds"] = out.pop("std") / 1e6 if out.get("std") is not None else None
    out["quantiles"] = {k: iso(v) for k, v in out["quantiles"].items()}
    out["histogram"]["edges"] = [iso(e) for e in out["histogram"]["edges"]]
    return out


def update_statistics(
    session: Session, view: FeatureSetView, version: int, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Merge a batch of rows (stored-form values by feature name, as written under `version`)
    into the statistics of that version, in the caller's transaction (rows locked on PostgreSQL)."""
    if not rows:
        return
    stored = {
        s.feature: s
        for s in session.scalars(
            select(FeatureStatistics)
            .where(FeatureStatistics.feature_set_id == view.id, FeatureStatistics.version == version)
            .with_for_update()
        )
    }
    now = utcnow()
    for feature in view.features(version):
        batch = batch_state([r.get(feature.name) for r in rows], feature.type)
        row = stored.get(feature.name)
        state = batch if row is None else merge(row.state, batch, feature.type)
        summary = summarize(state, feature.type)
        if row is None:
            session.add(
                FeatureStatistics(
                    feature_set_id=view.id,
                    version=version,
                    feature=feature.name,
                    state=state,
                    summary=summary,
                    updated_at=now,
                )
            )
        else:
            row.state, row.summary, row.updated_at = state, summary, now
    session.flush()


def read_statistics(session: Session, view: FeatureSetView, version: int | None) -> dict[str, Any]:
    """`{"feature_set", "version", "rows", "updated_at", "features": {name: summary}}`."""
    wanted = view.latest_version if version is None else version
    features = view.features(wanted)
    stored = {
        s.feature: s
        for s in session.scalars(
            select(FeatureStatistics).where(
                FeatureStatistics.feature_set_id == view.id, FeatureStatistics.version == wanted
            )
        )
    }
    out: dict[str, Any] = {}
    rows = 0
    for f in features:
        row = stored.get(f.name)
        out[f.name] = row.summary if row is not None else summarize(empty_state(f.type), f.type)
        rows = max(rows, out[f.name]["count"] + out[f.name]["nulls"])
    updated = max((s.updated_at for s in stored.values()), default=None)
    return {
        "feature_set": view.name,
        "version": wanted,
        "rows": rows,
        "updated_at": iso(updated),
        "features": out,
    }
