"""Reference profiles: what drift needs from training data, without keeping the data.

Built from column chunks (streamed input, bounded memory): exact counts and missing counts,
moments (merged per chunk, Chan et al.), min/max, category frequencies (bounded; the rest as
"other") and a bounded uniform sample. The sample is the bottom-k of a per-row hash key
(seed, row index), so a chunked build keeps exactly the rows a one-shot build keeps, and two
builders over disjoint rows merge exactly. Quantiles and the pinned bins PSI/JS use are taken
from the sample: exact when the column fits in it, otherwise an estimate (`sampled` says which).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from model_registry.monitoring import drift as st
from model_registry.monitoring.columns import Kind, infer_kind, label_counts, to_numeric

PROFILE_FORMAT = 1
OTHER = "__other__"
SMALL_DISTINCT = 20  # numeric columns with at most this many distinct values keep exact frequencies
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def _row_keys(seed: int, start: int, n: int) -> NDArray[np.uint64]:
    """splitmix64 of (seed, row index): a uniform pseudo-random key per row, chunk-invariant."""
    with np.errstate(over="ignore"):
        z = np.arange(start, start + n, dtype=np.uint64) * np.uint64(_GOLDEN)
        z = z + np.uint64((seed * 0xD1B54A32D192ED03 + _GOLDEN) & _MASK)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


@dataclass
class ColumnProfile:
    name: str
    kind: Kind
    count: int  # non-missing values
    missing: int
    frequencies: dict[str, int] = field(default_factory=dict)  # categorical/boolean (+ OTHER)
    categories_truncated: bool = False
    mean: float | None = None
    std: float | None = None  # population std (ddof=0)
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    value_counts: list[tuple[float, int]] | None = None  # numeric with <= SMALL_DISTINCT values
    bin_edges: list[float] = field(default_factory=list)  # interior edges of the pinned bins
    bin_counts: list[int] = field(default_factory=list)  # counts of the sample in those bins
    sample: list[float] = field(default_factory=list)
    sampled: bool = False

    @property
    def rows(self) -> int:
        return self.count + self.missing

    def sample_array(self) -> NDArray[np.float64]:
        return np.asarray(self.sample, dtype=np.float64)


@dataclass
class Profile:
    columns: dict[str, ColumnProfile]
    sample_size: int
    seed: int
    n_bins: int
    format: int = PROFILE_FORMAT

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["columns"] = [asdict(c) for c in self.columns.values()]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(f"profile format {data.get('format')!r} is not {PROFILE_FORMAT}")
        columns: dict[str, ColumnProfile] = {}
        for raw in data["columns"]:
            col = ColumnProfile(**raw)
            if col.value_counts is not None:
                col.value_counts = [(float(v), int(c)) for v, c in col.value_counts]
            columns[col.name] = col
        return cls(
            columns, int(data["sample_size"]), int(data["seed"]), int(data["n_bins"]), int(data["format"])
        )

    @classmethod
    def from_json(cls, text: str) -> Profile:
        return cls.from_dict(json.loads(text))


class _NumericAcc:
    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.lo = float("inf")
        self.hi = float("-inf")
        self.keys = np.empty(0, dtype=np.uint64)
        self.values = np.empty(0, dtype=np.float64)
        self.small: Counter[float] | None = Counter()

    def add(self, x: NDArray[np.float64], keys: NDArray[np.uint64], cap: int) -> None:
        if x.size:
            self._moments(x.size, float(x.mean()), float(((x - x.mean()) ** 2).sum()))
            self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
            if self.small is not None and np.unique(x[: 4 * SMALL_DISTINCT]).size > SMALL_DISTINCT:
                self.small = None  # cheap early exit for continuous columns
            if self.small is not None:
                self._small(Counter(dict(zip(*np.unique(x, return_counts=True), strict=True))))
        self._reservoir(keys, x, cap)

    def _moments(self, n: int, mean: float, m2: float) -> None:
        total = self.n + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.n * n / total
        self.mean += delta * n / total
        self.n = total

    def _small(self, counts: Counter[float]) -> None:
        if self.small is None:
            return
        self.small.update({float(k): int(v) for k, v in counts.items()})
        if len(self.small) > SMALL_DISTINCT:
            self.small = None

    def _reservoir(self, keys: NDArray[np.uint64], values: NDArray[np.float64], cap: int) -> None:
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values, values])
        if self.keys.size > cap:
            keep = np.argpartition(self.keys, cap - 1)[:cap]
            self.keys, self.values = self.keys[keep], self.values[keep]

    def merge(self, other: _NumericAcc, cap: int) -> None:
        if other.n:
            self._moments(other.n, other.mean, other.m2)
            self.lo, self.hi = min(self.lo, other.lo), max(self.hi, other.hi)
        if other.small is None:
            self.small = None
        else:
            self._small(other.small)
        self._reservoir(other.keys, other.values, cap)


class ProfileBuilder:
    """Accumulates column chunks; `finalize()` returns the Profile. Memory is bounded by
    sample_size values and a bounded number of categories per column."""

    def __init__(
        self,
        kinds: Mapping[str, Kind] | None = None,
        *,
        sample_size: int = 10_000,
        seed: int = 0,
        n_bins: int = 10,
        max_categories: int = 100,
        row_offset: int = 0,
    ) -> None:
        if min(sample_size, n_bins, max_categories) < 1 or row_offset < 0:
            raise ValueError("sample_size, n_bins and max_categories must be >= 1, row_offset >= 0")
        self.row_offset = row_offset  # index of this builder's first row in the whole input
        self.kinds: dict[str, Kind] = dict(kinds or {})
        self.sample_size, self.seed, self.n_bins = sample_size, seed, n_bins
        self.max_categories = max_categories
        self.rows: dict[str, int] = {}
        self.missing: dict[str, int] = {}
        self.numeric: dict[str, _NumericAcc] = {}
        self.categories: dict[str, Counter[str]] = {}
        self.truncated: dict[str, bool] = {}

    def update(self, chunk: Mapping[str, ArrayLike]) -> None:
        for name, values in chunk.items():
            kind = self.kinds.get(name) or self.kinds.setdefault(name, infer_kind(values))
            done = self.rows.get(name, 0)
            if kind == "numeric":
                n = self._add_numeric(name, values, self.row_offset + done)
            else:
                n = self._add_categorical(name, values, kind)
            self.rows[name] = done + n

    def _add_numeric(self, name: str, values: ArrayLike, start: int) -> int:
        x = to_numeric(name, values)
        present = ~np.isnan(x)
        keys = _row_keys(self.seed, start, x.size)[present]
        self.numeric.setdefault(name, _NumericAcc()).add(x[present], keys, self.sample_size)
        self.missing[name] = self.missing.get(name, 0) + int(x.size - present.sum())
        return int(x.size)

    def _add_categorical(self, name: str, values: ArrayLike, kind: Kind) -> int:
        counts, missing = label_counts(name, values, kind)
        self.missing[name] = self.missing.get(name, 0) + missing
        total = self.categories.setdefault(name, Counter())
        total.update(counts)
        self._compact(name, self.max_categories * 10)
        return sum(counts.values()) + missing

    def _compact(self, name: str, limit: int) -> None:
        """Keep the `max_categories` most frequent once more than `limit` are held; the rest
        fold into OTHER (so frequencies of rare categories become approximate)."""
        counts = self.categories[name]
        if len(counts) - (OTHER in counts) <= limit:
            return
        other = counts.pop(OTHER, 0)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = Counter(dict(ranked[: self.max_categories]))
        kept[OTHER] = other + sum(c for _, c in ranked[self.max_categories :])
        self.categories[name] = kept
        self.truncated[name] = True

    def merge(self, other: ProfileBuilder) -> None:
        """Add another builder's rows. Parts built over consecutive row ranges with the same seed
        (`row_offset` = the part's first row) merge into exactly the one-shot profile."""
        for name, kind in other.kinds.items():
            if self.kinds.setdefault(name, kind) != kind:
                raise ValueError(f"column {name!r}: {kind} in one part, {self.kinds[name]} in the other")
            self.rows[name] = self.rows.get(name, 0) + other.rows.get(name, 0)
            self.missing[name] = self.missing.get(name, 0) + other.missing.get(name, 0)
            if name in other.numeric:
                self.numeric.setdefault(name, _NumericAcc()).merge(other.numeric[name], self.sample_size)
            if name in other.categories:
                self.categories.setdefault(name, Counter()).update(other.categories[name])
                self.truncated[name] = self.truncated.get(name, False) or other.truncated.get(name, False)
                self._compact(name, self.max_categories * 10)

    def finalize(self) -> Profile:
        columns = {name: self._column(name, kind) for name, kind in self.kinds.items()}
        return Profile(columns, self.sample_size, self.seed, self.n_bins)

    def _column(self, name: str, kind: Kind) -> ColumnProfile:
        missing = self.missing.get(name, 0)
        if kind != "numeric":
            if name in self.categories:
                self._compact(name, self.max_categories)
            counts = self.categories.get(name, Counter())
            freq = {k: int(v) for k, v in sorted(counts.items()) if v}
            return ColumnProfile(
                name, kind, sum(freq.values()), missing, freq, self.truncated.get(name, False)
            )
        acc = self.numeric.get(name, _NumericAcc())
        order = np.argsort(acc.keys, kind="stable")
        sample = acc.values[order]
        edges = st.quantile_edges(sample, self.n_bins)
        col = ColumnProfile(name, kind, acc.n, missing, sampled=acc.n > sample.size)
        if acc.n:
            col.mean, col.std = acc.mean, float(np.sqrt(acc.m2 / acc.n))
            col.min, col.max = acc.lo, acc.hi
            col.quantiles = {
                str(q): float(v) for q, v in zip(QUANTILES, np.quantile(sample, QUANTILES), strict=True)
            }
        if acc.small is not None:
            col.value_counts = sorted((float(k), int(v)) for k, v in acc.small.items())
        col.bin_edges = [float(e) for e in edges]
        col.bin_counts = [int(c) for c in st.bin_counts(sample, edges)]
        col.sample = [float(v) for v in sample]
        return col


def build_profile(
    columns: Mapping[str, ArrayLike], kinds: Mapping[str, Kind] | None = None, **options: Any
) -> Profile:
    """One-shot build from whole columns."""
    return build_profile_chunks([columns], kinds, **options)


def build_profile_chunks(
    chunks: Iterable[Mapping[str, ArrayLike]], kinds: Mapping[str, Kind] | None = None, **options: Any
) -> Profile:
    """Build from an iterator of column chunks (each a mapping column -> values)."""
    builder = ProfileBuilder(kinds, **options)
    for chunk in chunks:
        builder.update(chunk)
    return builder.finalize()
