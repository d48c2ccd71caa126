"""Metric values and times as MLflow clients send and expect them.

JSON has no NaN or infinity: MLflow (protobuf JSON) writes them as the strings "NaN", "Infinity"
and "-Infinity", and we accept and return the same, so values round-trip faithfully.
"""

from __future__ import annotations

import math
import time
from typing import Any

from experiment_tracking.errors import InvalidValue

_SPECIAL = {"nan": math.nan, "infinity": math.inf, "inf": math.inf, "-infinity": -math.inf, "-inf": -math.inf}


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_metric_value(raw: Any, where: str = "value") -> float:
    if isinstance(raw, bool):
        raise InvalidValue(f"{where} must be a number, got {raw!r}")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        special = _SPECIAL.get(raw.strip().lower())
        if special is not None:
            return special
        try:
            return float(raw)
        except ValueError:
            pass
    raise InvalidValue(f"{where} must be a number, got {raw!r}")


def json_number(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def to_stored(value: float) -> tuple[float, bool]:
    """SQLite has no NaN: store 0 with a flag (infinities are stored as they are)."""
    return (0.0, True) if math.isnan(value) else (value, False)


def from_stored(value: float, is_nan: bool) -> float:
    return math.nan if is_nan else value
