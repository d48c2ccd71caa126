"""Times of the prediction log as epoch microseconds (UTC), and back."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(moment: datetime) -> datetime:
    """Aware UTC (naive values, as SQLite gives them back, are UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def micros(moment: datetime) -> int:
    """Epoch microseconds of an aware time (a naive one, as SQLite gives them back, is UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def datetimes(values: NDArray[np.int64]) -> list[datetime]:
    return [d.replace(tzinfo=UTC) for d in values.astype("datetime64[us]").tolist()]
