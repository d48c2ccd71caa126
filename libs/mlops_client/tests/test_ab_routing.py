"""Pure tests of experiment assignment (mlops_client.ab_routing): no service needed.

The GrowthBook vectors below are numbers taken from GrowthBook's SDK behavioural test suite,
growthbook/growthbook packages/sdk-js/test/cases.json (spec version 0.5.4), sections "hash",
"getBucketRange", "chooseVariation", "inNamespace", and the experiment results of the "run" and
"feature"/"stickyBucket" sections that use hash version 2.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from mlops_client.ab_routing import (
    Assignment,
    bucket_ranges,
    choose_variant,
    compile_definition,
    evaluate,
    fnv1a32,
    hash_v1,
    hash_v2,
    in_namespace,
)

# cases.json "hash": (seed, value, hash version, expected)
HASH_VECTORS = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("b", "a", 1, 0.946),
    ("ef", "d", 1, 0.652),
    ("asdf", "8952klfjas09ujk", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
    ("seed", "b", 2, 0.2696),
    ("foo", "ab", 2, 0.2575),
    ("foo", "def", 2, 0.2019),
    ("89123klj", "8952klfjas09ujkasdf", 2, 0.124),
    ("90850943850283058242805", "123", 2, 0.7516),
    ("()**(%$##$%#$#", '___)((*":&', 2, 0.0128),
]

# cases.json "getBucketRange": (name, (variations, coverage, weights or None), expected ranges)
BUCKET_RANGE_VECTORS: list[tuple[str, tuple[int, float, list[float] | None], list[tuple[float, float]]]] = [
    ("normal 50/50", (2, 1, None), [(0, 0.5), (0.5, 1)]),
    ("reduced coverage", (2, 0.5, None), [(0, 0.25), (0.5, 0.75)]),
    ("zero coverage", (2, 0, None), [(0, 0), (0.5, 0.5)]),
    ("4 variations", (4, 1, None), [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]),
    ("uneven weights", (2, 1, [0.4, 0.6]), [(0, 0.4), (0.4, 1)]),
    ("uneven weights, 3 variations", (3, 1, [0.2, 0.3, 0.5]), [(0, 0.2), (0.2, 0.5), (0.5, 1)]),
    ("uneven, reduced coverage", (3, 0.2, [0.2, 0.3, 0.5]), [(0, 0.04), (0.2, 0.26), (0.5, 0.6)]),
    ("negative coverage", (2, -0.2, None), [(0, 0), (0.5, 0.5)]),
    ("coverage above 1", (2, 1.5, None), [(0, 0.5), (0.5, 1)]),
    ("weights sum below 1", (2, 1, [0.4, 0.1]), [(0, 0.5), (0.5, 1)]),
    ("weights sum above 1", (2, 1, [0.7, 0.6]), [(0, 0.5), (0.5, 1)]),
    (
        "weights.length != variations",
        (4, 1, [0.4, 0.4, 0.2]),
        [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)],
    ),
    ("weights sum almost 1", (2, 1, [0.4, 0.5999]), [(0, 0.4), (0.4, 0.9999)]),
]

EVEN = [(0, 0.5), (0.5, 1)]
REDUCED = [(0, 0.25), (0.5, 0.75)]
# cases.json "chooseVariation": (n, ranges, expected index)
CHOOSE_VECTORS = [
    (0.2, EVEN, 0),
    (0.4, EVEN, 0),
    (0.6, EVEN, 1),
    (0.8, EVEN, 1),
    (0, EVEN, 0),
    (0.5, EVEN, 1),
    (0.2, REDUCED, 0),
    (0.4, REDUCED, -1),
    (0.6, REDUCED, 1),
    (0.8, REDUCED, -1),
    (0.25, REDUCED, -1),
    (0.5, REDUCED, 1),
    (0.5, [(0, 0.5), (0.5, 0.5), (0.5, 1)], 2),
]

# cases.json "inNamespace": (user id, (namespace, start, end), expected)
NAMESPACE_VECTORS = [
    ("1", ("namespace1", 0, 0.4), False),
    ("1", ("namespace1", 0.4, 1), True),
    ("1", ("namespace2", 0, 0.4), False),
    ("1", ("namespace2", 0.4, 1), True),
    ("2", ("namespace1", 0, 0.4), False),
    ("2", ("namespace1", 0.4, 1), True),
    ("3", ("namespace1", 0, 0.4), False),
    ("3", ("namespace1", 0.4, 1), True),
    ("3", ("namespace2", 0, 0.4), True),
    ("3", ("namespace2", 0.4, 1), False),
    ("4", ("namespace1", 0, 0.4), False),
    ("4", ("namespace2", 0, 0.4), True),
    ("4", ("namespace2", 0.4, 1), False),
]

# experiments of cases.json evaluated with hash version 2:
# (seed, user id, weights, coverage, namespace, expected variation index, expected bucket or None)
EXPERIMENT_VECTORS: list[tuple[str, str, list[float], float, Any, int, float | None]] = [
    # run: "Uses seed with default weights/coverage" and "Uses seed with weights/coverage"
    ("foo", "1", [0.5, 0.5], 1.0, None, 1, None),
    ("foo", "1", [0.5, 0.5], 0.99, None, 1, None),
    # feature: "creates experiments properly" (namespace ["pricing", 0, 1])
    ("feature", "123", [0.1, 0.9], 0.99, {"name": "pricing", "range": [0, 1]}, 1, 0.5231),
    # stickyBucket: a first evaluation without a stored bucket
    ("feature-exp", "d123", [0.3334, 0.3333, 0.3333], 1.0, None, 1, 0.6468),
    ("feature-exp", "i123", [0.3334, 0.3333, 0.3333], 1.0, None, 2, 0.9943),
]


def _definition(**fields: Any) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "key": "model_v2_test",
        "seed": None,
        "status": "running",
        "phase": 1,
        "coverage": 1.0,
        "namespace": None,
        "variants": [
            {"name": "control", "weight": 0.5, "model_version": "v1.0"},
            {"name": "treatment", "weight": 0.5, "model_version": "v2.0"},
        ],
        "overrides": {},
    }
    definition.update(fields)
    return definition


def _variants(*weights: float) -> list[dict[str, Any]]:
    return [{"name": f"v{i}", "weight": w, "model_version": str(i)} for i, w in enumerate(weights)]


# GrowthBook vectors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("seed", "value", "version", "expected"), HASH_VECTORS)
def test_hash_matches_growthbook(seed: str, value: str, version: int, expected: float) -> None:
    assert (hash_v1 if version == 1 else hash_v2)(seed, value) == expected


def test_fnv1a32_reference_values() -> None:
    # the FNV reference test vectors (FNV-1a, 32 bit), and UTF-8 bytes for other characters
    assert fnv1a32("") == 0x811C9DC5
    assert fnv1a32("a") == 0xE40C292C
    assert fnv1a32("foobar") == 0xBF9CF968
    state = 0x811C9DC5
    for byte in "é".encode():
        state = ((state ^ byte) * 0x01000193) % 2**32
    assert fnv1a32("é") == state


@pytest.mark.parametrize(
    ("name", "args", "expected"), BUCKET_RANGE_VECTORS, ids=[v[0] for v in BUCKET_RANGE_VECTORS]
)
def test_bucket_ranges_match_growthbook(
    name: str, args: tuple[int, float, list[float] | None], expected: list[tuple[float, float]]
) -> None:
    count, coverage, weights = args
    ranges = bucket_ranges(
        weights if weights is not None else [1 / count] * count, coverage, num_variations=count
    )
    assert ranges == [pytest.approx(r) for r in expected]
    if weights is not None and len(weights) == count:
        assert bucket_ranges(weights, coverage) == ranges  # num_variations defaults to len(weights)


@pytest.mark.parametrize(("n", "ranges", "expected"), CHOOSE_VECTORS)
def test_choose_variant_matches_growthbook(
    n: float, ranges: list[tuple[float, float]], expected: int
) -> None:
    assert choose_variant(n, ranges) == expected


@pytest.mark.parametrize(("user", "namespace", "expected"), NAMESPACE_VECTORS)
def test_in_namespace_matches_growthbook(
    user: str, namespace: tuple[str, float, float], expected: bool
) -> None:
    assert in_namespace(user, *namespace) is expected


@pytest.mark.parametrize(
    ("seed", "user", "weights", "coverage", "namespace", "index", "bucket"), EXPERIMENT_VECTORS
)
def test_evaluate_matches_growthbook_experiments(
    seed: str,
    user: str,
    weights: list[float],
    coverage: float,
    namespace: Any,
    index: int,
    bucket: float | None,
) -> None:
    definition = _definition(seed=seed, variants=_variants(*weights), coverage=coverage, namespace=namespace)
    result = evaluate(definition, user)
    assert (result.variant, result.model_version, result.in_experiment, result.reason) == (
        f"v{index}",
        str(index),
        True,
        "bucket",
    )
    assert result.hash == (bucket if bucket is not None else hash_v2(seed, user))


# buckets and coverage -------------------------------------------------------------------------
def test_bucket_edges_belong_to_the_next_variant() -> None:
    ranges = bucket_ranges([0.5, 0.5])
    assert choose_variant(0.0, ranges) == 0
    assert choose_variant(0.4999, ranges) == 0
    assert choose_variant(0.5, ranges) == 1  # start inclusive, end exclusive
    assert choose_variant(0.9999, ranges) == 1
    assert choose_variant(1.0, ranges) == -1
    assert bucket_ranges([]) == []
    assert bucket_ranges([0.5, 0.5], num_variations=0) == []


def test_coverage_excludes_users_but_keeps_their_variant_when_it_grows() -> None:
    users = [f"user-{i}" for i in range(20_000)]
    small = compile_definition(_definition(coverage=0.3))
    large = compile_definition(_definition(coverage=0.6))
    before = [small.evaluate(u) for u in users]
    after = [large.evaluate(u) for u in users]
    included = [a for a in before if a.in_experiment]
    assert abs(len(included) / len(users) - 0.3) < 0.01
    for a in before:
        if not a.in_experiment:
            assert (a.variant, a.model_version, a.reason) == ("control", "v1.0", "coverage")
            assert a.hash is not None
    # raising the coverage only adds users: nobody already in changes variant
    for old, new in zip(before, after, strict=True):
        if old.in_experiment:
            assert new.in_experiment and new.variant == old.variant
    assert abs(sum(a.in_experiment for a in after) / len(users) - 0.6) < 0.01
    nobody = compile_definition(_definition(coverage=0))
    assert not any(nobody.evaluate(u).in_experiment for u in users[:1000])


def test_distribution_of_100k_users_follows_the_weights() -> None:
    compiled = compile_definition(_definition(variants=_variants(0.2, 0.3, 0.5)))
    counts = Counter(compiled.evaluate(f"user_{i}").variant for i in range(100_000))
    for name, weight in (("v0", 0.2), ("v1", 0.3), ("v2", 0.5)):
        assert abs(counts[name] / 100_000 - weight) < 0.005, counts
    hashes = [compiled.hash(f"user_{i}") for i in range(100_000)]
    deciles = Counter(int(h * 10) for h in hashes)
    assert all(abs(deciles[d] / 100_000 - 0.1) < 0.005 for d in range(10)), deciles


def test_weights_that_do_not_sum_to_one_become_equal() -> None:
    compiled = compile_definition(_definition(variants=_variants(0.9, 0.9)))
    assert compiled.ranges == [(0.0, 0.5), (0.5, 1.0)]


# namespaces -----------------------------------------------------------------------------------
def test_namespace_ranges_make_experiments_mutually_exclusive() -> None:
    first = compile_definition(_definition(key="a", namespace={"name": "checkout", "range": [0.0, 0.5]}))
    second = compile_definition(_definition(key="b", namespace={"name": "checkout", "range": [0.5, 1.0]}))
    users = [f"u{i}" for i in range(10_000)]
    in_first = {u for u in users if first.evaluate(u).in_experiment}
    in_second = {u for u in users if second.evaluate(u).in_experiment}
    assert not in_first & in_second
    assert in_first | in_second == set(users)
    assert abs(len(in_first) / len(users) - 0.5) < 0.02
    out = first.evaluate(next(u for u in users if u not in in_first))
    assert (out.variant, out.in_experiment, out.reason, out.hash) == ("control", False, "namespace", None)
    for u in users[:200]:
        assert (u in in_first) == in_namespace(u, "checkout", 0.0, 0.5)
    # GrowthBook's list form is accepted too
    listed = compile_definition(_definition(key="a", namespace=["checkout", 0.0, 0.5]))
    assert all(listed.evaluate(u).in_experiment == (u in in_first) for u in users[:500])


# overrides and status -------------------------------------------------------------------------
def test_overrides_win_over_namespace_coverage_and_hash() -> None:
    definition = _definition(
        coverage=0.0,
        namespace={"name": "checkout", "range": [0.0, 0.0]},
        overrides={"qa-1": "treatment", "qa-2": "removed-variant"},
    )
    forced = evaluate(definition, "qa-1")
    assert forced == Assignment("model_v2_test", "qa-1", "treatment", "v2.0", True, 1, None, "override")
    stale = evaluate(definition, "qa-2")  # an override naming a variant that no longer exists
    assert (stale.variant, stale.in_experiment, stale.reason) == ("control", False, "namespace")


@pytest.mark.parametrize("status", ["draft", "paused", "stopped", "archived"])
def test_not_running_serves_the_control_to_everyone(status: str) -> None:
    variants = [
        {"name": "treatment", "weight": 0.5, "model_version": "v2.0"},
        {"name": "control", "weight": 0.5, "model_version": "v1.0"},  # the control is not first
    ]
    definition = _definition(status=status, variants=variants, overrides={"qa-1": "treatment"})
    for user in ("u1", "u2", "u3", "qa-1"):
        result = evaluate(definition, user)
        assert (result.variant, result.model_version) == ("control", "v1.0")
        assert (result.in_experiment, result.reason, result.hash) == (False, "not_running", None)
    first = evaluate(_definition(status="paused", variants=_variants(0.5, 0.5)), "u1")
    assert first.variant == "v0"  # without a variant named control, the first is the control


# determinism ----------------------------------------------------------------------------------
def test_assignment_is_deterministic_and_seeded() -> None:
    definition = _definition()
    compiled = compile_definition(definition)
    users = [f"user_{i}" for i in range(2000)]
    first = [evaluate(definition, u) for u in users]
    assert first == [evaluate(definition, u) for u in users] == [compiled.evaluate(u) for u in users]
    assert all(a.hash == hash_v2("model_v2_test", a.user_id) for a in first)  # seed defaults to the key
    reseeded = [evaluate(_definition(seed="model_v2_test-phase-2"), u) for u in users]
    moved = sum(a.variant != b.variant for a, b in zip(first, reseeded, strict=True))
    assert 0.4 < moved / len(users) < 0.6  # a new seed re-randomizes
    assert first[0].phase == 1 and first[0].experiment == "model_v2_test"


def test_assignment_round_trips_through_its_dict() -> None:
    result = evaluate(_definition(), "user_123")
    data = result.to_dict()
    assert set(data) == {
        "experiment",
        "user_id",
        "variant",
        "model_version",
        "in_experiment",
        "phase",
        "hash",
        "reason",
    }
    assert Assignment.from_dict({**data, "extra": 1}) == result


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        evaluate(_definition(), "")
    with pytest.raises(ValueError):
        evaluate(_definition(variants=[]), "u1")
    with pytest.raises(ValueError):
        evaluate(_definition(key=""), "u1")
    assert evaluate(_definition(), 123).user_id == "123"  # type: ignore[arg-type]
