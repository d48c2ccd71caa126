"""Experiment assignment: the one implementation, used by the A/B testing service (`GET /api/route`)
and by clients evaluating a definition locally (`LocalRouter`), so both always answer the same.

Pure standard library, no I/O. Hashing and bucketing are GrowthBook's (hash version 2, namespaces,
`getBucketRanges`, `chooseVariation`), checked against the vectors of GrowthBook's SDK test suite:

- ``hash_v2(seed, user_id) = fnv1a32(str(fnv1a32(seed + user_id))) % 10000 / 10000``
- a namespace ``{"name": ns, "range": [start, end]}`` admits users with
  ``fnv1a32(user_id + "__" + ns) % 1000 / 1000`` in ``[start, end)``
- variant ``i`` owns ``[cumulative_i, cumulative_i + coverage * weight_i)``; a hash in no range is
  outside the coverage.

FNV-1a runs over the UTF-8 bytes of the text. For ASCII ids (the usual case) that is exactly what
the GrowthBook SDKs compute; they hash UTF-16 code units (JS) or code points (Python) instead, so
ids with other characters may be bucketed differently than a GrowthBook SDK would bucket them.

>>> definition = {"key": "model_v2_test", "status": "running", "phase": 1, "seed": None,
...               "coverage": 1.0, "namespace": None, "overrides": {},
...               "variants": [{"name": "control", "weight": 0.5, "model_version": "1"},
...                            {"name": "treatment", "weight": 0.5, "model_version": "2"}]}
>>> evaluate(definition, "user_123").variant in ("control", "treatment")
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Literal

__all__ = [
    "Assignment",
    "CompiledExperiment",
    "Reason",
    "bucket_ranges",
    "choose_variant",
    "compile_definition",
    "evaluate",
    "fnv1a32",
    "hash_v1",
    "hash_v2",
    "in_namespace",
]

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF

Reason = Literal["override", "bucket", "not_running", "namespace", "coverage"]
Range = tuple[float, float]


def _fnv(state: int, data: bytes, prime: int = FNV_PRIME, mask: int = _MASK) -> int:
    """Continue an FNV-1a (32-bit) hash over `data` (FNV streams: fnv(a + b) == _fnv(fnv(a), b))."""
    for byte in data:
        state = ((state ^ byte) * prime) & mask
    return state


@lru_cache(maxsize=4096)
def _seed_state(seed: str) -> int:
    """The FNV state after a seed (experiments have few seeds, compiled again and again)."""
    return _fnv(FNV_OFFSET, seed.encode())


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-8 bytes of `text`."""
    return _fnv(FNV_OFFSET, text.encode())


def hash_v2(seed: str, value: str) -> float:
    """GrowthBook's hash version 2, in [0, 1) with 4 decimals."""
    return fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000


def hash_v1(seed: str, value: str) -> float:
    """GrowthBook's hash version 1 (used for namespaces), in [0, 1) with 3 decimals."""
    return fnv1a32(value + seed) % 1000 / 1000


def in_namespace(user_id: str, namespace: str, start: float, end: float) -> bool:
    """GrowthBook's `inNamespace`: whether the user's namespace hash is in ``[start, end)``."""
    n = hash_v1("__" + namespace, user_id)
    return start <= n < end


def bucket_ranges(
    weights: Sequence[float], coverage: float = 1.0, *, num_variations: int | None = None
) -> list[Range]:
    """GrowthBook's `getBucketRanges`: one ``(start, end)`` per variant. `coverage` is clamped to
    [0, 1]; weights that do not sum to 1 (±0.01), or that are not `num_variations` long when
    that is given, become equal weights; each range starts where the previous weight ended and
    covers `coverage` of its weight."""
    coverage = 0.0 if coverage < 0 else 1.0 if coverage > 1 else float(coverage)
    count = len(weights) if num_variations is None else num_variations
    chosen = [float(w) for w in weights]
    total = 0.0
    for w in chosen:  # summed left to right like the SDKs (sum() compensates, it can differ)
        total += w
    if len(chosen) != count or total < 0.99 or total > 1.01:
        chosen = [1 / count] * count if count > 0 else []
    ranges: list[Range] = []
    cumulative = 0.0
    for w in chosen:
        start = cumulative
        cumulative += w
        ranges.append((start, start + coverage * w))
    return ranges


def choose_variant(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """GrowthBook's `chooseVariation`: the index of the first range with ``start <= n < end``,
    or -1 when `n` is in none (outside the coverage)."""
    for i, (start, end) in enumerate(ranges):
        if start <= n < end:
            return i
    return -1


@dataclass(slots=True)
class Assignment:
    """Which variant a user gets, and why (treat it as read-only: not frozen only because a
    frozen dataclass is several times slower to build, and this is built on every route).

    `variant`/`model_version` are the control's when the user is not in the experiment (not
    running, outside the namespace or the coverage), so a caller always has a model to serve;
    `in_experiment` says whether the user counts as a participant. `reason`:

    - ``override``: a forced variant (`PUT .../overrides/{user_id}`); `hash` is None
    - ``bucket``: assigned by hash (`hash` is the user's hash)
    - ``not_running``: the experiment is draft, paused, stopped or archived
    - ``namespace``: outside the experiment's namespace range
    - ``coverage``: the hash fell outside every variant's range (coverage below 1)
    """

    experiment: str
    user_id: str
    variant: str | None
    model_version: str | None
    in_experiment: bool
    phase: int | None
    hash: float | None
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        """The route answer's fields (`GET /api/route`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        """From a route answer (unknown fields are ignored)."""
        values: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        return cls(**values)


class CompiledExperiment:
    """A definition parsed once (the seed's FNV state, the variants' ranges, the control), for
    evaluating many users fast: `evaluate(definition, user_id)` compiles on every call, so a
    caller routing many users (the service, `LocalRouter`) compiles once per definition. The
    definition is kept by reference (overrides are read from it): do not mutate it afterwards.
    Raises ValueError for a definition without key or variants."""

    __slots__ = (
        "_by_name",
        "_control",
        "_namespace",
        "_overrides",
        "_seed_state",
        "definition",
        "key",
        "phase",
        "ranges",
        "running",
        "seed",
        "status",
        "variants",
    )

    def __init__(self, definition: Mapping[str, Any]):
        key = definition.get("key")
        if not isinstance(key, str) or not key:
            raise ValueError("experiment definition needs a non-empty 'key'")
        raw_variants = definition.get("variants") or []
        if not raw_variants:
            raise ValueError(f"experiment {key!r} has no variants")
        self.definition = definition
        self.key: str = key
        self.seed: str = str(definition.get("seed") or key)
        self.status: str = str(definition.get("status") or "")
        self.running = self.status == "running"
        self.phase: int | None = definition.get("phase")
        variants: list[tuple[str, str | None]] = []
        weights: list[float] = []
        control: tuple[str, str | None] | None = None
        for v in raw_variants:
            name, version = v["name"], v.get("model_version")
            pair = (name if isinstance(name, str) else str(name), None if version is None else str(version))
            variants.append(pair)
            weights.append(float(v.get("weight", 0.0)))
            if control is None and pair[0] == "control":
                control = pair
        self.variants = variants
        self._control = control or variants[0]
        self._by_name = dict(variants)
        coverage = definition.get("coverage")
        self.ranges = bucket_ranges(weights, 1.0 if coverage is None else float(coverage))
        self._seed_state = _seed_state(self.seed)
        self._overrides: Mapping[str, Any] = definition.get("overrides") or {}
        self._namespace = _namespace(definition.get("namespace"))

    def hash(self, user_id: str) -> float:
        """`hash_v2(seed, user_id)`, continuing from the seed's cached FNV state."""
        inner = _fnv(self._seed_state, user_id.encode())
        return _fnv(FNV_OFFSET, str(inner).encode()) % 10000 / 10000

    def evaluate(self, user_id: str) -> Assignment:
        """The user's assignment: not running → the control (not in the experiment); then a
        user override; then the namespace; then the hash against the variants' ranges."""
        if not isinstance(user_id, str):
            user_id = str(user_id)
        if not user_id:
            raise ValueError("user_id must be a non-empty string")
        if not self.running:
            name, version = self._control
            return Assignment(self.key, user_id, name, version, False, self.phase, None, "not_running")
        forced = self._overrides.get(user_id) if self._overrides else None
        if forced is not None and forced in self._by_name:  # a removed variant's override is ignored
            return Assignment(
                self.key, user_id, forced, self._by_name[forced], True, self.phase, None, "override"
            )
        if self._namespace is not None:
            suffix, start, end = self._namespace
            n = _fnv(_fnv(FNV_OFFSET, user_id.encode()), suffix) % 1000 / 1000
            if not start <= n < end:
                name, version = self._control
                return Assignment(self.key, user_id, name, version, False, self.phase, None, "namespace")
        h = self.hash(user_id)
        for i, (start, end) in enumerate(self.ranges):
            if start <= h < end:
                name, version = self.variants[i]
                return Assignment(self.key, user_id, name, version, True, self.phase, h, "bucket")
        name, version = self._control
        return Assignment(self.key, user_id, name, version, False, self.phase, h, "coverage")


def _namespace(value: Any) -> tuple[bytes, float, float] | None:
    """``{"name", "range": [start, end]}`` (or GrowthBook's ``[name, start, end]``) → the bytes
    hashed after the user id, start and end."""
    if not value:
        return None
    if isinstance(value, Mapping):
        name, (start, end) = value["name"], value["range"]
    else:
        name, start, end = value
    return ("__" + str(name)).encode(), float(start), float(end)


def compile_definition(definition: Mapping[str, Any]) -> CompiledExperiment:
    """Parse a definition (`GET /api/experiments/{e}/definition`) once for many evaluations."""
    return CompiledExperiment(definition)


def evaluate(definition: Mapping[str, Any] | CompiledExperiment, user_id: str) -> Assignment:
    """Assign `user_id` under an experiment definition: key, seed (default: the key), status,
    phase, coverage, namespace ``{"name", "range": [start, end]}`` or null, variants
    ``[{"name", "weight", "model_version"}]`` (the control is the one named "control", else the
    first) and overrides ``{user_id: variant_name}``. See `CompiledExperiment.evaluate`."""
    compiled = definition if isinstance(definition, CompiledExperiment) else CompiledExperiment(definition)
    return compiled.evaluate(user_id)
