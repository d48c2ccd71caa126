"""Vectorized assignment (ingestion's) answers exactly what `CompiledExperiment.evaluate` does."""

from __future__ import annotations

import random

import pytest
from ab_testing.bulk import variants_of
from mlops_client.ab_routing import compile_definition

BASE = {
    "key": "exp",
    "status": "running",
    "phase": 1,
    "seed": None,
    "coverage": 0.8,
    "namespace": None,
    "overrides": {"user-7": "b", "ghost-override": "removed"},
    "variants": [
        {"name": "a", "weight": 0.34, "model_version": "1"},
        {"name": "b", "weight": 0.33, "model_version": "2"},
        {"name": "c", "weight": 0.33, "model_version": "3"},
    ],
}


def users() -> list[str]:
    rng = random.Random(3)
    fixed = [
        "user-7",
        "x",
        "0",
        "4294967295",
        "é-ü",
        "日本語ユーザー",
        "a" * 300,
        "trailing\x00",
        "ghost-override",
    ]
    return fixed + [f"user-{i}" for i in range(5000)] + [str(rng.random()) for _ in range(2000)]


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"coverage": 1.0, "seed": "another seed"},
        {"namespace": {"name": "checkout", "range": [0.2, 0.7]}},
        {"namespace": ["legacy", 0.0, 0.5], "overrides": {}},
        {"status": "paused"},
        {"variants": [{"name": "only", "weight": 1.0}], "coverage": 0.05},
    ],
)
def test_bulk_assignment_equals_evaluate_for_every_user(change: dict) -> None:
    compiled = compile_definition(BASE | change)
    everyone = users()
    expected = [a.variant if a.in_experiment else None for a in map(compiled.evaluate, everyone)]
    assert variants_of(compiled, everyone) == expected
    # all ASCII takes numpy's fast path; the mixed list above took the UTF-8 one
    ascii_only = [u for u in everyone if u.isascii()]
    assert variants_of(compiled, ascii_only) == [
        e for u, e in zip(everyone, expected, strict=True) if u.isascii()
    ]
    assert variants_of(compiled, []) == []
