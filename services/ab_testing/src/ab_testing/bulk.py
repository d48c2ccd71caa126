"""Assignment of many users at once, vectorized with numpy: the same answers as
`CompiledExperiment.evaluate` (mlops_client.ab_routing, the one definition of the rules), at a
fraction of the cost per user. Ingestion assigns every event that names no variant with it.

FNV-1a runs column by column over the users' bytes (a user's state stops changing past the end of
their id), then over the decimal digits of the inner hash, exactly as hash version 2 does."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mlops_client.ab_routing import FNV_OFFSET, FNV_PRIME, CompiledExperiment

_MASK = np.uint64(0xFFFFFFFF)
_PRIME = np.uint64(FNV_PRIME)
_POWERS = [np.uint64(10**k) for k in range(9, -1, -1)]


def _as_bytes(users: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """A (users x longest) uint8 matrix of the UTF-8 bytes, zero-padded, and each id's length."""
    try:
        encoded = np.array(users, dtype=np.bytes_)  # ASCII ids: numpy encodes them in C
        lengths = np.fromiter(map(len, users), dtype=np.int64, count=len(users))
    except UnicodeEncodeError:
        raw = [u.encode() for u in users]
        encoded = np.array(raw, dtype=np.bytes_)
        lengths = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
    width = encoded.dtype.itemsize
    return encoded.view(np.uint8).reshape(len(users), width), lengths


def _fnv_columns(state: np.ndarray, matrix: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    for j in range(matrix.shape[1]):
        stepped = ((state ^ matrix[:, j]) * _PRIME) & _MASK
        state = np.where(lengths > j, stepped, state)
    return state


def _fnv_suffix(state: np.ndarray, suffix: bytes) -> np.ndarray:
    for byte in suffix:
        state = ((state ^ np.uint64(byte)) * _PRIME) & _MASK
    return state


def _fnv_decimal(inner: np.ndarray) -> np.ndarray:
    """FNV-1a of ``str(inner)`` for each 32-bit value: over its digits, most significant first."""
    digits = np.ones(len(inner), dtype=np.int64)
    for k in range(1, 10):
        digits += inner >= np.uint64(10**k)
    state = np.full(len(inner), FNV_OFFSET, dtype=np.uint64)
    for k, power in enumerate(_POWERS):  # position k of 10 holds a digit when digits >= 10 - k
        digit = (inner // power) % np.uint64(10) + np.uint64(48)
        stepped = ((state ^ digit) * _PRIME) & _MASK
        state = np.where(digits >= 10 - k, stepped, state)
    return state


def _hash_v2(compiled: CompiledExperiment, matrix: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """`compiled.hash(u)` for every user (float64)."""
    inner = _fnv_columns(np.full(len(lengths), compiled._seed_state, dtype=np.uint64), matrix, lengths)
    return (_fnv_decimal(inner) % np.uint64(10000)).astype(np.float64) / 10000


def variants_of(compiled: CompiledExperiment, users: Sequence[str]) -> list[str | None]:
    """Each user's variant name, or None when they are not in the experiment (not running,
    outside the namespace or the coverage): ``evaluate(u).variant if evaluate(u).in_experiment``."""
    n = len(users)
    if n == 0 or not compiled.running:
        return [None] * n
    matrix, lengths = _as_bytes(users)
    h = _hash_v2(compiled, matrix, lengths)
    chosen = np.full(n, -1, dtype=np.int64)
    for i, (low, high) in enumerate(compiled.ranges):
        chosen[(chosen < 0) & (h >= low) & (h < high)] = i
    if compiled._namespace is not None:
        suffix, low, high = compiled._namespace
        plain = _fnv_columns(np.full(n, FNV_OFFSET, dtype=np.uint64), matrix, lengths)
        spot = (_fnv_suffix(plain, suffix) % np.uint64(1000)).astype(np.float64) / 1000
        chosen[(spot < low) | (spot >= high)] = -1
    names = [name for name, _ in compiled.variants]
    out: list[str | None] = [names[i] if i >= 0 else None for i in chosen.tolist()]
    overrides = compiled._overrides
    if overrides:
        for j, user in enumerate(users):
            forced = overrides.get(user)
            if forced is not None and forced in compiled._by_name:
                out[j] = forced
    return out
