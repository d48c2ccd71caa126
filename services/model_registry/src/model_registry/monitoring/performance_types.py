"""Result types shared by the performance metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from model_registry.monitoring.performance_intervals import Interval


class PerformanceInputError(ValueError):
    """Malformed input (mismatched lengths or probability shapes): a 422 at the API."""


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float | None
    n: int
    interval: Interval | None = None
    reason: str | None = None

    @classmethod
    def empty(cls, name: str, reason: str, n: int = 0) -> MetricResult:
        return cls(name, None, n, None, reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "n": self.n,
            "interval": self.interval.to_dict() if self.interval is not None else None,
            "reason": self.reason,
        }
