"""One evaluation of a model's monitoring configuration: resolve the watched version, read its
window, compute drift and performance, and give every value a rule can use (no writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mlops_kit.errors import AppError
from sqlalchemy.orm import Session

from model_registry.aliases import service as aliases
from model_registry.errors import ReferenceNotFound
from model_registry.models import service as models
from model_registry.monitoring import alert_repository as arepo
from model_registry.monitoring import alerts, service
from model_registry.monitoring.alert_schemas import DriftConfigIn, MonitoringConfigIn
from model_registry.monitoring.performance import compute_performance
from model_registry.monitoring.performance_types import PerformanceInputError
from model_registry.monitoring.report import DriftConfig, FeatureConfig
from model_registry.tables import ModelVersion, RegisteredModel

N_BOOTSTRAP = 50  # the values do not depend on it; the intervals are not used by rules


@dataclass
class Measurement:
    version: str | None
    window: dict[str, Any] | None = None
    values: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    features: list[dict[str, Any]] = field(default_factory=list)
    logged: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def value(self, metric: str) -> tuple[float | None, str | None]:
        value = self.values.get(metric)
        if value is not None:
            return value, None
        return None, self.reasons.get(metric) or self.error or f"{metric} was not computed in this window"

    def to_json(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "values": self.values,
            "reasons": self.reasons,
            "features": self.features,
            "logged": self.logged,
            "error": self.error,
        }


def drift_config(config: DriftConfigIn) -> DriftConfig:
    return DriftConfig(
        features={
            name: FeatureConfig(method=f.method, threshold=f.threshold, binning=f.binning)
            for name, f in config.features.items()
        },
        min_rows=config.min_rows,
        alpha=config.alpha,
        drift_share=config.drift_share,
        binning=config.binning,
    )


def watched_version(session: Session, model: RegisteredModel, version: str | None) -> ModelVersion:
    """The configured version ('@alias' resolved now, so it follows the alias), else the one of the
    most recently logged prediction, else the latest registered."""
    wanted = service.pick_version(session, model, version)
    if wanted.startswith("@"):
        return aliases.resolve(session, model, wanted[1:])
    return models.load_version(session, model, wanted)


def window_of(config: MonitoringConfigIn, now: datetime) -> tuple[datetime | None, datetime | None]:
    if config.window is None:
        return None, now
    return now - service.parse_last(config.window), now


def _drift(
    session: Session, model: RegisteredModel, version: ModelVersion, config: MonitoringConfigIn, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(drift report, window), read in `session`; errors as AppError."""
    current = service.current_window(session, model, version, window_of(config, now), config.last_n)
    return service.drift_of(current, drift_config(config.drift)), current.window.model_dump(mode="json")


def _add_drift(
    m: Measurement,
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    config: MonitoringConfigIn,
    now: datetime,
) -> None:
    try:
        report, m.window = _drift(session, model, version, config, now)
    except ReferenceNotFound:
        _unknown(m, alerts.DRIFT_METRICS, f"version {version.version!r} has no reference profile")
        return
    except AppError as exc:
        m.error = f"drift: {exc.message}"
        _unknown(m, alerts.DRIFT_METRICS, m.error)
        return
    m.values |= alerts.drift_values(report)
    if report["dataset"]["status"] != "ok":
        _unknown(m, alerts.DRIFT_METRICS, "insufficient data for drift")
    for result in report["features"]:
        score = alerts.feature_score(result)
        m.features.append(
            {
                "feature": result["feature"],
                "method": result["method"],
                "score": score,
                "drifted": result["drifted"],
            }
        )
        if score is None:
            m.reasons[f"drift_score:{result['feature']}"] = "insufficient data for drift"
            m.reasons[f"drifted:{result['feature']}"] = "insufficient data for drift"


def _add_performance(
    m: Measurement,
    session: Session,
    model: RegisteredModel,
    version: ModelVersion,
    config: MonitoringConfigIn,
    now: datetime,
) -> None:
    labelled = service.labelled_window(session, model, version, window_of(config, now), config.last_n)
    m.logged["window_labelled"] = labelled.window.count
    try:
        report = compute_performance(
            labelled.predictions, labelled.labels, labelled.probabilities, n_bootstrap=N_BOOTSTRAP
        ).to_dict()
    except PerformanceInputError as exc:
        m.error = f"performance: {exc}"
        _unknown(m, alerts.PERFORMANCE_METRICS, m.error)
        return
    values, reasons = alerts.performance_values(report)
    m.values |= values
    m.reasons |= reasons


def _unknown(m: Measurement, metrics: tuple[str, ...], reason: str) -> None:
    for name in metrics:
        if m.values.get(name) is None:
            m.values[name] = None
            m.reasons[name] = reason


def measure(
    session: Session, model: RegisteredModel, config: MonitoringConfigIn, now: datetime
) -> Measurement:
    """Everything a rule of `config` can be evaluated on, as of `now` (reads only)."""
    try:
        version = watched_version(session, model, config.version)
    except AppError as exc:
        m = Measurement(None, error=f"version: {exc.message}")
        _unknown(m, (*alerts.DRIFT_METRICS, *alerts.PERFORMANCE_METRICS), m.error or "")
        return m
    m = Measurement(version.version)
    predictions, labels = arepo.logged_counts(session, model.id, version.version)
    m.logged = {"predictions": predictions, "labels": labels}
    if config.drift_detection_enabled:
        _add_drift(m, session, model, version, config, now)
    _add_performance(m, session, model, version, config, now)
    if m.window is None:
        m.window = {"start": _iso(window_of(config, now)[0]), "end": _iso(now), "last_n": config.last_n}
    return m


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def expires(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
