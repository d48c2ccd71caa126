"""Outcome events: validated as a batch (all or nothing), de-duplicated on their event id, and
folded into sufficient statistics on the way in.

Each user has one aggregate per (component) metric and phase (`user_metrics`); a metric's
per-variant sums (`metric_stats`: n, sum, sum of squares, covariate cross-products for CUPED,
numerator/denominator products for ratio metrics) change by the difference between the user's
old and new contribution. Analysis reads only those sums.

Per-user value of a metric: binary — 1 if any event had a positive value, else 0; continuous —
the sum of the user's values (``aggregation: "mean"``: their mean); ratio — the user's summed
numerator and denominator component metrics.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from mlops_client.ab_routing import CompiledExperiment, compile_definition, evaluate
from mlops_kit.audit import utcnow
from mlops_kit.errors import Unprocessable
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from ab_testing.experiments import definition, get_experiment
from ab_testing.routing import record_exposures, upsert_insert
from ab_testing.tables import Event, Experiment, MetricStats, Status, UserMetric


def _number(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, got {type(value).__name__} {value!r}"[:120])
    return float(value)


Number = Annotated[float, BeforeValidator(_number)]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str | None = Field(default=None, min_length=1, max_length=200)
    experiment: str = Field(min_length=1, max_length=100)
    user_id: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=100)
    value: Number | None = None
    covariate: Number | None = Field(default=None, description="the user's pre-period value (CUPED)")
    variant: str | None = Field(default=None, max_length=100)
    timestamp: datetime | None = None


@dataclass
class _Exp:
    row: Experiment
    definition: dict[str, Any]
    compiled: CompiledExperiment
    variants: set[str]
    components: dict[str, dict[str, Any]]  # metric an event may name -> its definition (or a component stub)
    ratios_of: dict[str, list[dict[str, Any]]]  # component -> ratio metrics built on it
    means: dict[str, dict[str, Any]]  # binary/continuous metrics by name


def _load(session: Session, ref: str) -> _Exp:
    row = get_experiment(session, ref)
    metrics = {m["name"]: m for m in row.metrics}
    components: dict[str, dict[str, Any]] = {n: m for n, m in metrics.items() if m["type"] != "ratio"}
    ratios_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for m in metrics.values():
        if m["type"] == "ratio":
            for part in (m["numerator"], m["denominator"]):
                components.setdefault(part, {"name": part, "type": "component"})
                ratios_of[part].append(m)
    return _Exp(
        row=row,
        definition=(found := definition(session, row)),
        compiled=compile_definition(found),
        variants={v["name"] for v in row.variants},
        components=components,
        ratios_of=ratios_of,
        means={n: m for n, m in metrics.items() if m["type"] in ("binary", "continuous")},
    )


def _fail(index: int, message: str, code: str, **details: Any) -> Unprocessable:
    return Unprocessable(f"event {index}: {message}", {"index": index, **details}, code=code)


def user_value(metric: dict[str, Any], total: float, events: int) -> float:
    if metric["type"] == "binary":
        return 1.0 if total > 0 else 0.0
    if metric.get("aggregation") == "mean" and events:
        return total / events
    return total


def ingest(session: Session, events: list[EventIn]) -> dict[str, Any]:
    experiments: dict[str, _Exp] = {}
    resolved: list[tuple[EventIn, _Exp, str]] = []
    skipped = 0
    for i, ev in enumerate(events):
        exp = experiments.get(ev.experiment)
        if exp is None:
            exp = experiments[ev.experiment] = _load(session, ev.experiment)
        if exp.row.status in (Status.DRAFT, Status.ARCHIVED):
            raise _fail(i, f"experiment {exp.row.key!r} is {exp.row.status}", "EXPERIMENT_NOT_COLLECTING")
        if ev.metric not in exp.components:
            raise _fail(
                i,
                f"experiment {exp.row.key!r} has no metric {ev.metric!r}; events may name "
                f"{sorted(exp.components)}",
                "UNKNOWN_METRIC",
                metric=ev.metric,
            )
        if ev.value is None and ev.covariate is None:
            raise _fail(i, "an event needs a 'value' (or a pre-period 'covariate')", "MISSING_VALUE")
        for name in ("value", "covariate"):
            number = getattr(ev, name)
            if number is not None and not math.isfinite(number):
                raise _fail(i, f"'{name}' must be a finite number", "INVALID_VALUE", field=name)
        variant = ev.variant
        if variant is not None and variant not in exp.variants:
            raise _fail(
                i,
                f"experiment {exp.row.key!r} has no variant {variant!r}; it has {sorted(exp.variants)}",
                "UNKNOWN_VARIANT",
                variant=variant,
            )
        if variant is None:
            assignment = evaluate(exp.compiled, ev.user_id)
            if not assignment.in_experiment or assignment.variant is None:
                skipped += 1
                continue
            variant = assignment.variant
        resolved.append((ev, exp, variant))

    fresh, duplicates = _dedupe(session, resolved)
    if not fresh:
        return {"accepted": 0, "duplicates": duplicates, "not_in_experiment": skipped}
    now = utcnow()
    _insert_many(
        session,
        "events",
        ["experiment_id", "event_id", "phase", "user_id", "variant", "metric", "value", "covariate", "at"],
        [
            {
                "experiment_id": exp.row.id,
                "event_id": ev.event_id or uuid.uuid4().hex,
                "phase": exp.row.phase,
                "user_id": ev.user_id,
                "variant": variant,
                "metric": ev.metric,
                "value": ev.value,
                "covariate": ev.covariate,
                "at": _utc(ev.timestamp) or now,
            }
            for ev, exp, variant in fresh
        ],
    )
    known = _fold(session, fresh)
    # a user who already had an aggregate in this phase was exposed when it was created
    record_exposures(
        session,
        {
            (exp.row.id, exp.row.phase, ev.user_id): variant
            for ev, exp, variant in fresh
            if (exp.row.id, exp.row.phase, ev.user_id) not in known
        },
    )
    return {"accepted": len(fresh), "duplicates": duplicates, "not_in_experiment": skipped}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dedupe(
    session: Session, resolved: list[tuple[EventIn, _Exp, str]]
) -> tuple[list[tuple[EventIn, _Exp, str]], int]:
    by_experiment: dict[str, list[str]] = defaultdict(list)
    for ev, exp, _ in resolved:
        if ev.event_id:
            by_experiment[exp.row.id].append(ev.event_id)
    seen: set[tuple[str, str]] = set()
    conn = session.connection()
    for exp_id, ids in by_experiment.items():
        for start in range(0, len(ids), 900):
            # (experiment, event id) is the unique index: one lookup per id
            seen.update(
                conn.execute(
                    select(Event.experiment_id, Event.event_id).where(
                        Event.experiment_id == exp_id, Event.event_id.in_(ids[start : start + 900])
                    )
                ).all()
            )
    fresh = []
    duplicates = 0
    for item in resolved:
        ev, exp, _ = item
        if ev.event_id:
            key = (exp.row.id, ev.event_id)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
        fresh.append(item)
    return fresh, duplicates


STAT_FIELDS = (
    "n",
    "sum",
    "sum_sq",
    "n_cov",
    "sum_x",
    "sum_x_sq",
    "sum_xy",
    "sum_den",
    "sum_den_sq",
    "sum_num_den",
)


def _mean_contribution(metric: dict[str, Any], row: dict[str, Any] | None) -> tuple[float, ...]:
    if row is None:
        return (0.0,) * 10
    y = user_value(metric, row["total"], row["events"])
    has_events = row["events"] > 0
    counted = has_events or bool(metric.get("zero_fill"))
    x = row["covariate"]
    if not counted:
        return (0.0,) * 10
    n = 1.0 if has_events else 0.0
    cov = (1.0, x, x * x, x * y) if x is not None else (0.0, 0.0, 0.0, 0.0)
    return (n, y, y * y, *cov, 0.0, 0.0, 0.0)


def _ratio_contribution(num: dict[str, Any] | None, den: dict[str, Any] | None) -> tuple[float, ...]:
    if (num is None or num["events"] == 0) and (den is None or den["events"] == 0):
        return (0.0,) * 10
    a = num["total"] if num else 0.0
    b = den["total"] if den else 0.0
    return (1.0, a, a * a, 0.0, 0.0, 0.0, 0.0, b, b * b, a * b)


def _fold(session: Session, fresh: list[tuple[EventIn, _Exp, str]]) -> set[tuple[str, int, str]]:
    """Fold the events into the users' aggregates and the variants' sums; returns the
    (experiment, phase, user) that already had an aggregate."""
    # this batch's changes per (experiment, phase, component metric, user)
    delta: dict[tuple[str, int, str, str], list[Any]] = {}
    exps: dict[str, _Exp] = {}
    for ev, exp, variant in fresh:
        exps[exp.row.id] = exp
        key = (exp.row.id, exp.row.phase, ev.metric, ev.user_id)
        d = delta.setdefault(key, [0.0, 0, None, variant])
        if ev.value is not None:
            d[0] += float(ev.value)
            d[1] += 1
        if ev.covariate is not None:
            d[2] = float(ev.covariate)
    # the components whose old rows matter: the changed ones, and the partners of ratio metrics
    needed: set[tuple[str, int, str, str]] = set(delta)
    for exp_id, phase, metric, user in list(delta):
        for ratio in exps[exp_id].ratios_of.get(metric, []):
            for part in (ratio["numerator"], ratio["denominator"]):
                needed.add((exp_id, phase, part, user))
    old = _load_rows(session, needed)
    new = {key: dict(row) for key, row in old.items()}
    for key, (total, count, covariate, variant) in delta.items():
        row = new.get(key)
        if row is None:
            row = new[key] = {"total": 0.0, "events": 0, "covariate": None, "variant": variant}
        row["total"] += total
        row["events"] += count
        if covariate is not None:
            row["covariate"] = covariate
    # per-variant sums change by new contribution - old contribution
    stats: dict[tuple[str, int, str, str], list[float]] = defaultdict(lambda: [0.0] * 10)
    ratio_seen: set[tuple[str, int, str, str]] = set()
    for key in delta:
        exp_id, phase, metric, user = key
        exp = exps[exp_id]
        variant = new[key]["variant"]
        if metric in exp.means:
            m = exp.means[metric]
            _accumulate(
                stats[(exp_id, phase, variant, metric)],
                _mean_contribution(m, new[key]),
                _mean_contribution(m, old.get(key)),
            )
        for ratio in exp.ratios_of.get(metric, []):
            rkey = (exp_id, phase, ratio["name"], user)
            if rkey in ratio_seen:
                continue
            ratio_seen.add(rkey)
            nk = (exp_id, phase, ratio["numerator"], user)
            dk = (exp_id, phase, ratio["denominator"], user)
            _accumulate(
                stats[(exp_id, phase, variant, ratio["name"])],
                _ratio_contribution(new.get(nk), new.get(dk)),
                _ratio_contribution(old.get(nk), old.get(dk)),
            )
    _write_user_rows(session, {k: new[k] for k in delta})
    _write_stats(session, stats)
    return {(e, p, u) for e, p, _, u in old}


def _accumulate(target: list[float], plus: tuple[float, ...], minus: tuple[float, ...]) -> None:
    for i in range(10):
        target[i] += plus[i] - minus[i]


def _load_rows(
    session: Session, keys: set[tuple[str, int, str, str]]
) -> dict[tuple[str, int, str, str], dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for exp_id, phase, metric, user in keys:
        groups[(exp_id, phase, metric)].append(user)
    found: dict[tuple[str, int, str, str], dict[str, Any]] = {}
    for (exp_id, phase, metric), users in groups.items():
        for start in range(0, len(users), 900):
            rows = session.execute(
                select(
                    UserMetric.user_id,
                    UserMetric.total,
                    UserMetric.events,
                    UserMetric.covariate,
                    UserMetric.variant,
                ).where(
                    and_(
                        UserMetric.experiment_id == exp_id,
                        UserMetric.phase == phase,
                        UserMetric.metric == metric,
                        UserMetric.user_id.in_(users[start : start + 900]),
                    )
                )
            ).all()
            for user, total, events, covariate, variant in rows:
                found[(exp_id, phase, metric, user)] = {
                    "total": total,
                    "events": events,
                    "covariate": covariate,
                    "variant": variant,
                }
    return found


def _write_user_rows(session: Session, rows: dict[tuple[str, int, str, str], dict[str, Any]]) -> None:
    if not rows:
        return
    values = [
        {
            "experiment_id": e,
            "phase": p,
            "metric": m,
            "user_id": u,
            "variant": r["variant"],
            "total": r["total"],
            "events": r["events"],
            "covariate": r["covariate"],
        }
        for (e, p, m, u), r in rows.items()
    ]
    _insert_many(
        session,
        "user_metrics",
        ["experiment_id", "phase", "metric", "user_id", "variant", "total", "events", "covariate"],
        values,
        conflict="(experiment_id, phase, metric, user_id) DO UPDATE SET total = excluded.total, "
        "events = excluded.events, covariate = excluded.covariate",
    )


def _insert_many(
    session: Session, table: str, columns: list[str], rows: list[dict[str, Any]], conflict: str | None = None
) -> None:
    """One INSERT sent with the driver's executemany: this is the ingestion hot path, and building
    thousands of bound parameters through the SQL compiler cost more than the database."""
    if not rows:
        return
    conn = session.connection()
    sqlite_ = conn.dialect.name == "sqlite"
    marks = ", ".join(f":{c}" if sqlite_ else f"%({c})s" for c in columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    if conflict:
        sql += f" ON CONFLICT {conflict}"
    if sqlite_:
        # stored as SQLAlchemy's SQLite DateTime does: naive UTC text (most rows share one time)
        texts: dict[datetime, str] = {}
        for row in rows:
            at = row.get("at")
            if isinstance(at, datetime):
                text = texts.get(at)
                if text is None:
                    text = texts[at] = (
                        at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
                    )
                row["at"] = text
    conn.exec_driver_sql(sql, rows)


def _write_stats(session: Session, stats: dict[tuple[str, int, str, str], list[float]]) -> None:
    insert_ = upsert_insert(session)
    for (e, p, v, m), d in stats.items():
        values = dict(zip(STAT_FIELDS, d, strict=True))
        values["n"] = round(values["n"])
        values["n_cov"] = round(values["n_cov"])
        stmt = insert_(MetricStats).values(experiment_id=e, phase=p, variant=v, metric=m, **values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["experiment_id", "phase", "variant", "metric"],
            set_={f: getattr(MetricStats, f) + getattr(stmt.excluded, f) for f in STAT_FIELDS},
        )
        session.execute(stmt)
